#!/usr/bin/env python
"""Train a BERT text classifier (softmax or kernel attention) in one optimizer regime, then score its attributions.

Runs with ``python`` or ``accelerate launch`` (one process, DDP, or FSDP; see ``recipes/README.md``)::

    accelerate launch --cpu recipes/train_bert.py --output_dir outputs/bert
    accelerate launch --cpu recipes/train_bert.py --output_dir outputs/minilm \
        --model_name_or_path sentence-transformers/all-MiniLM-L6-v2 --attention_type kernel
    python recipes/train_bert.py args.json

Arguments: every ``TrainingArguments`` flag, plus those of ``TextModelArguments``, ``TextDataArguments``,
``RobustnessArguments`` (``--robustness_*``: the scoring settings) and ``RobAttrTrainingArguments`` (``--help``
lists them). Every value is checked before anything is loaded. With only ``--output_dir`` it trains a tiny BERT from
scratch on the embedded ``synthetic_sentiment`` set with an offline tokenizer. The tiny from-scratch BERT does not
leave its initial plateau under plain SGD within minutes, so this recipe defaults to ``--optimizer adamw`` and 3
epochs; pass ``--optimizer sgd`` for the implicit regime (e.g. fine-tuning a checkpoint). Attribution robustness is
measured in embedding space. The output directory receives the model (safetensors + ``auto_map`` code), the
tokenizer, ``results.json`` and the model card.
"""

import logging

from transformers import HfArgumentParser

from hf_robattr.hub import publish_run_result, run_summary
from hf_robattr.robustness import RobustnessArguments
from hf_robattr.training import (
    RobAttrTrainingArguments,
    TextDataArguments,
    TextModelArguments,
    finish_run,
    parse_arguments,
    run_pipeline,
    setup_logging,
)


logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> dict:
    """Parse the arguments, run the pipeline (train, save, evaluate, score), write the model card (and push it with
    ``--push_to_hub``), print a summary; return the results."""
    parser = HfArgumentParser((TextModelArguments, TextDataArguments, RobustnessArguments, RobAttrTrainingArguments))
    defaults = {"optimizer": "adamw", "num_train_epochs": 3}  # the tiny BERT's regime (see the docstring)
    model_args, data_args, robustness_args, training_args = parse_arguments(parser, argv, defaults=defaults)
    setup_logging(training_args)
    logger.info("Training arguments: %s", training_args)

    run = run_pipeline(model_args, data_args, training_args, robustness_args.to_config())

    publish_run_result(run, training_args, tokenizer=run.data.processor)  # card; push if asked
    finish_run(run.trainer)
    summary = run_summary(run, training_args)  # where everything is, the scores, what to run next
    if summary:
        print(summary)
    return run.results


if __name__ == "__main__":
    main()
