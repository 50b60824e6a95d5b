#!/usr/bin/env python
"""Train a ViT classifier (softmax or kernel attention) in one optimizer regime, then score its attributions.

Runs with ``python`` or ``accelerate launch`` (one process, DDP, or FSDP; see ``recipes/README.md``)::

    accelerate launch --cpu recipes/train_vit.py --output_dir outputs/vit
    accelerate launch --cpu recipes/train_vit.py --output_dir outputs/vit-igr --regularizer igr --regularizer_weight 0.05
    python recipes/train_vit.py args.json

Arguments: every ``TrainingArguments`` flag, plus those of ``VisionModelArguments``, ``ImageDataArguments`` and
``RobAttrTrainingArguments`` (``--help`` lists them). With only ``--output_dir`` it trains a tiny ViT from scratch
on the embedded ``synthetic_images`` set, offline, in a few minutes on two CPU cores. The output directory receives
the model (safetensors + ``auto_map`` code), its image processor and ``results.json``.
"""

import logging

from transformers import HfArgumentParser, default_data_collator, set_seed

from hf_robattr.hub import defer_hub_push, publish_run
from hf_robattr.training import (
    ImageDataArguments,
    RobAttrTrainer,
    RobAttrTrainingArguments,
    VisionModelArguments,
    build_results,
    build_vit_classifier,
    compute_accuracy,
    evaluate_test_robustness,
    finish_run,
    load_image_processor,
    parse_arguments,
    prepare_image_data,
    save_outputs,
    setup_logging,
    training_callbacks,
)


logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> dict:
    """Parse arguments, train, evaluate on the test split, save the model, ``results.json`` and the model card (pushed with ``--push_to_hub``); return the results."""
    parser = HfArgumentParser((VisionModelArguments, ImageDataArguments, RobAttrTrainingArguments))
    model_args, data_args, training_args = parse_arguments(parser, argv)
    setup_logging(training_args)
    push = defer_hub_push(training_args)  # the card and the upload come after the run folder is complete
    logger.info("Training arguments: %s", training_args)
    set_seed(training_args.seed)

    image_processor = load_image_processor(model_args)
    use_processor = image_processor if model_args.model_name_or_path else None
    data = prepare_image_data(
        data_args, image_size=model_args.image_size, image_processor=use_processor, seed=training_args.seed
    )
    model = build_vit_classifier(model_args, label_names=data.label_names)

    trainer = RobAttrTrainer(
        model=model,
        args=training_args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        data_collator=default_data_collator,
        processing_class=image_processor,
        compute_metrics=compute_accuracy,
        callbacks=training_callbacks(training_args),
    )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.log_metrics("train", train_result.metrics)

    test_metrics = trainer.evaluate(data.test, metric_key_prefix="test")
    trainer.log_metrics("test", test_metrics)
    robustness = {}
    if trainer.is_world_process_zero():
        robustness = evaluate_test_robustness(trainer.model, data.test, default_data_collator, training_args)
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
        samples = default_data_collator([data.test[i] for i in range(min(4, len(data.test)))])
        publish_run(
            training_args.output_dir,
            model=trainer.model,
            inputs=samples["pixel_values"],
            repo_id=training_args.hub_model_id,
            push=push,
            token=training_args.hub_token,
            private=training_args.hub_private_repo,
        )
    finish_run(trainer)
    return results


if __name__ == "__main__":
    main()
