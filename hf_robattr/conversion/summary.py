"""The lines ``recipes/convert_to_kernel.py`` ends with: where the converted model is, its fidelity, what to run next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hf_robattr.hub.summary import run_folder_summary

from .student import model_task


__all__ = ["conversion_headline", "conversion_summary"]

_STAGE_NAMES = {"plain_swap": "the plain swap", "attention_transfer": "attention transfer", "recovery": "recovery"}


def conversion_headline(result: Any) -> list[str]:
    """The fidelity of a :class:`~hf_robattr.conversion.ConversionResult`'s last measured stage, and what each stage
    ran (with its stop rule's decision)."""
    lines = []
    if result.fidelity:
        stage, numbers = list(result.fidelity.items())[-1]
        shown = []
        if "embedding_cosine_mean" in numbers:
            shown.append(f"embedding cosine {numbers['embedding_cosine_mean']:.3f} (mean)")
            if numbers.get("pairwise_similarity_correlation") is not None:
                shown.append(f"pairwise-similarity correlation {numbers['pairwise_similarity_correlation']:.3f}")
        if "top1_agreement" in numbers:
            shown.append(f"top-1 agreement {100 * numbers['top1_agreement']:.1f}%")
        if "student_accuracy" in numbers:
            shown.append(
                f"accuracy {100 * numbers['student_accuracy']:.1f}% (teacher {100 * numbers['teacher_accuracy']:.1f}%)"
            )
        shared = result.data.get("num_eval_examples_in_training")
        examples = "held-out examples" if not shared else f"eval examples ({shared} of them also conversion examples)"
        lines.append(
            f"Fidelity to the teacher after {_STAGE_NAMES.get(stage, stage)}, on {numbers.get('num_examples')} "
            f"{examples}: {', '.join(shown)}."
        )
    for stage, record in result.stages.items():
        decision = (record.stop_rule or {}).get("decision")
        ran = decision if decision and decision.startswith("skipped") else f"{record.steps} steps"
        if decision and not decision.startswith("skipped"):
            ran += f" ({decision})"
        lines.append(f"{_STAGE_NAMES.get(stage, stage).capitalize()}: {ran}, {record.wall_time_s:.0f} s.")
    return lines


def conversion_summary(result: Any, output_dir: str | Path, *, pushed_repo: str | None = None) -> str:
    """The summary the conversion recipe prints last (see :func:`~hf_robattr.hub.summary.run_folder_summary`); the
    explorer is offered for classifiers."""
    classifier = model_task(result.model) == "classification"
    return run_folder_summary(output_dir, conversion_headline(result), pushed_repo=pushed_repo, demo=classifier)
