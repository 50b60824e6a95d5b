"""Arguments of ``recipes/reproduce_paper.py`` (a dataclass for ``HfArgumentParser``: CLI flags or one JSON file)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .grid import MODELS, SCALES


__all__ = ["StudyArguments"]


@dataclass
class StudyArguments:
    """Which study to run, where to store it, and how many worker processes to use."""

    output_dir: str = field(metadata={"help": "Study directory: runs/ (one JSON per finished run), report.md, PNGs."})
    scale: str = field(
        default="ci",
        metadata={"help": f"Grid and protocol size, one of {list(SCALES)}: ci = smoke test, cpu = conclusive on "
                  "2 CPU cores, gpu = CIFAR-10/SST-2 on an accelerator."},
    )  # fmt: skip
    num_workers: int = field(
        default=1, metadata={"help": "Parallel worker processes (spawn); each gets cpu_count // num_workers threads."}
    )
    threads_per_worker: int | None = field(
        default=None, metadata={"help": "Torch threads per worker (default: cpu_count // num_workers, at least 1)."}
    )
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Image dataset for the ViT runs instead of the scale's default (embedded name or Hub id)."},
    )
    text_dataset_name: str | None = field(
        default=None, metadata={"help": "Text dataset for the BERT runs instead of the scale's default."}
    )
    models: list[str] = field(
        default_factory=lambda: list(MODELS),
        metadata={"help": f"Which models of the grid to run, from {list(MODELS)}."},
    )
    seeds: int | None = field(
        default=None, metadata={"help": "Use only the first N seeds of every cell (a pilot); default: the scale's."}
    )
    max_runs: int | None = field(
        default=None,
        metadata={"help": "Run at most N pending runs now (to time a few runs); the report still renders."},
    )
    estimate_only: bool = field(
        default=False, metadata={"help": "Print the wall-time estimate from the stored runs and exit without running."}
    )
    report_note: str | None = field(
        default=None, metadata={"help": "A note for the report title, e.g. PILOT for a partial study."}
    )
    progress: bool = field(default=True, metadata={"help": "Show the progress bar (runs done / left / ETA)."})

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"--scale must be one of {list(SCALES)}, got {self.scale!r}.")
        if self.num_workers < 0:
            raise ValueError(f"--num_workers must be >= 0, got {self.num_workers}.")
        unknown = [model for model in self.models if model not in MODELS]
        if unknown:
            raise ValueError(f"--models has unknown entries {unknown}; expected names from {list(MODELS)}.")
        for name in ("seeds", "max_runs", "threads_per_worker"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be >= 1, got {value}.")
