#!/usr/bin/env python
"""Train a ViT classifier (softmax or kernel attention) in one optimizer regime, then score its attributions.

Runs with ``python`` or ``accelerate launch`` (one process, DDP, or FSDP; see ``recipes/README.md``)::

    accelerate launch --cpu recipes/train_vit.py --output_dir outputs/vit
    accelerate launch --cpu recipes/train_vit.py --output_dir outputs/vit-igr --regularizer igr --regularizer_weight 0.05
    python recipes/train_vit.py args.json

Arguments: every ``TrainingArguments`` flag, plus those of ``VisionModelArguments``, ``ImageDataArguments``,
``RobustnessArguments`` (``--robustness_*``: the scoring settings) and ``RobAttrTrainingArguments`` (``--help``
lists them). Every value is checked before anything is loaded. With only ``--output_dir`` it trains a tiny ViT from
scratch on the embedded ``synthetic_images`` set, offline, in about a minute on two CPU cores. The output directory
receives the model (safetensors + ``auto_map`` code), its image processor, ``results.json`` and the model card.
"""

import logging

from transformers import HfArgumentParser

from hf_robattr.hub import publish_run_result, run_summary
from hf_robattr.robustness import RobustnessArguments
from hf_robattr.training import (
    ImageDataArguments,
    RobAttrTrainingArguments,
    VisionModelArguments,
    finish_run,
    parse_arguments,
    run_pipeline,
    setup_logging,
)


logger = logging.getLogger(__name__)


def parse(
    argv: list[str] | None = None,
) -> tuple[VisionModelArguments, ImageDataArguments, RobustnessArguments, RobAttrTrainingArguments]:
    """The recipe's arguments from ``argv`` (``sys.argv`` when ``None``), checked; nothing is loaded or written."""
    parser = HfArgumentParser(
        (VisionModelArguments, ImageDataArguments, RobustnessArguments, RobAttrTrainingArguments)
    )
    return parse_arguments(parser, argv)


def main(argv: list[str] | None = None) -> dict:
    """Parse the arguments, run the pipeline (train, save, evaluate, score), write the model card (and push it with
    ``--push_to_hub``), print a summary; return the results."""
    model_args, data_args, robustness_args, training_args = parse(argv)
    setup_logging(training_args)
    logger.info("Training arguments: %s", training_args)

    run = run_pipeline(model_args, data_args, training_args, robustness_args.to_config())

    publish_run_result(run, training_args)  # card; push if asked
    finish_run(run.trainer)
    summary = run_summary(run, training_args)  # where everything is, the scores, what to run next
    if summary:
        print(summary)
    return run.results


if __name__ == "__main__":
    main()
