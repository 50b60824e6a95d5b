#!/usr/bin/env python
"""Train a BERT text classifier (softmax or kernel attention) in one optimizer regime, then score its attributions.

Runs with ``python`` or ``accelerate launch`` (one process, DDP, or FSDP; see ``recipes/README.md``)::

    accelerate launch --cpu recipes/train_bert.py --output_dir outputs/bert
    accelerate launch --cpu recipes/train_bert.py --output_dir outputs/minilm \
        --model_name_or_path sentence-transformers/all-MiniLM-L6-v2 --attention_type kernel
    python recipes/train_bert.py args.json

Arguments: every ``TrainingArguments`` flag, plus those of ``TextModelArguments``, ``TextDataArguments`` and
``RobAttrTrainingArguments`` (``--help`` lists them). With only ``--output_dir`` it trains a tiny BERT from scratch
on the embedded ``synthetic_sentiment`` set with an offline tokenizer. The tiny from-scratch BERT does not leave
its initial plateau under plain SGD within minutes, so this recipe defaults to ``--optimizer adamw`` on the
command line; pass ``--optimizer sgd`` for the implicit regime (e.g. fine-tuning a checkpoint). Attribution
robustness is measured in embedding space. The output directory receives the model (safetensors + ``auto_map``
code), the tokenizer and ``results.json``.
"""

import logging

from transformers import DataCollatorWithPadding, HfArgumentParser, set_seed

from hf_robattr.hub import defer_hub_push, publish_run
from hf_robattr.training import (
    RobAttrTrainer,
    RobAttrTrainingArguments,
    TextDataArguments,
    TextModelArguments,
    build_bert_classifier,
    build_results,
    compute_accuracy,
    evaluate_test_robustness,
    finish_run,
    load_tokenizer,
    parse_arguments,
    prepare_text_data,
    save_outputs,
    setup_logging,
    training_callbacks,
)


logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> dict:
    """Parse arguments, train, evaluate on the test split, save the model, ``results.json`` and the model card (pushed with ``--push_to_hub``); return the results."""
    parser = HfArgumentParser((TextModelArguments, TextDataArguments, RobAttrTrainingArguments))
    parser.set_defaults(optimizer="adamw", num_train_epochs=3)
    model_args, data_args, training_args = parse_arguments(parser, argv)
    setup_logging(training_args)
    push = defer_hub_push(training_args)  # the card and the upload come after the run folder is complete
    logger.info("Training arguments: %s", training_args)
    set_seed(training_args.seed)

    tokenizer = load_tokenizer(model_args)
    data = prepare_text_data(data_args, tokenizer=tokenizer, seed=training_args.seed)
    model = build_bert_classifier(model_args, label_names=data.label_names, tokenizer=tokenizer)
    collator = DataCollatorWithPadding(tokenizer)

    trainer = RobAttrTrainer(
        model=model,
        args=training_args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_accuracy,
        callbacks=training_callbacks(training_args),
    )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.log_metrics("train", train_result.metrics)

    test_metrics = trainer.evaluate(data.test, metric_key_prefix="test")
    trainer.log_metrics("test", test_metrics)
    robustness = {}
    if trainer.is_world_process_zero():
        robustness = evaluate_test_robustness(trainer.model, data.test, collator, training_args)
        logger.info("Attribution robustness on the test split: %s", robustness)

    results = build_results(
        trainer=trainer,
        model_args=model_args,
        data=data,
        train_runtime=train_result.metrics["train_runtime"],
        test_metrics=test_metrics,
        robustness=robustness,
    )
    save_outputs(trainer, results)
    if trainer.is_world_process_zero():
        samples = collator([data.test[i] for i in range(min(4, len(data.test)))])
        publish_run(
            training_args.output_dir,
            model=trainer.model,
            inputs={key: samples[key] for key in tokenizer.model_input_names if key in samples},
            tokenizer=tokenizer,
            repo_id=training_args.hub_model_id,
            push=push,
            token=training_args.hub_token,
            private=training_args.hub_private_repo,
        )
    finish_run(trainer)
    return results


if __name__ == "__main__":
    main()
