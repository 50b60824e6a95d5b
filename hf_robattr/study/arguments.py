"""Arguments of ``recipes/reproduce_paper.py`` (a dataclass for ``HfArgumentParser``: CLI flags or one JSON file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .executors import EXECUTORS
from .scales import SCALES


__all__ = ["StudyArguments"]

_EXECUTOR_FLAGS = ("executor", "num_workers", "threads_per_worker", "ray_address", "progress")


@dataclass
class StudyArguments:
    """Which study to run, where to store it, and on which executor."""

    output_dir: str = field(
        metadata={"help": "Study directory: runs/ (one JSON per finished run), checkpoints/, report.md, plots."}
    )
    scale: str = field(
        default="ci",
        metadata={
            "help": f"Grid and protocol size, one of {list(SCALES)}: ci = smoke test of every code path, "
            "cpu = study v3 (about 13 CPU hours), cpu_v2 = study v2 (superseded), gpu = CIFAR-10/SST-2 with "
            "pretrained models on accelerators."
        },
    )
    arms: list[str] | None = field(
        default=None,
        metadata={"help": "Which arms of the scale to run (default: all of them, e.g. vit vit_budget minilm)."},
    )
    executor: str = field(
        default="local",
        metadata={"help": f"Where runs execute, one of {list(EXECUTORS)}: local worker processes or Ray tasks."},
    )
    ray_address: str | None = field(
        default=None, metadata={"help": "--executor ray: the cluster's address (default: start a local Ray)."}
    )
    num_workers: int = field(
        default=1,
        metadata={
            "help": "Local parallel worker processes (on Linux forked from a forkserver that imported torch once); "
            "0 or 1 runs in this process."
        },
    )
    threads_per_worker: int | None = field(
        default=None, metadata={"help": "Torch threads (Ray: CPUs) per run (default: cpu_count // num_workers)."}
    )
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Image dataset of the scale's main ViT arm instead of its default (embedded name or Hub "
            "id; checked before any run)."
        },
    )
    text_dataset_name: str | None = field(
        default=None,
        metadata={"help": "Text dataset of the text arm instead of its default (checked before any run)."},
    )
    runs_archive: str | None = field(
        default=None,
        metadata={
            "help": "A folder of compressed run records kept with the report (e.g. docs/study-cpu/records, "
            "committed): its runs that --output_dir lacks are copied in and not rerun, and every finished run is "
            "archived there too, so that a study continued over several machines loses nothing."
        },
    )
    seeds: int | None = field(
        default=None, metadata={"help": "Use only the first N seeds of every cell (a pilot); default: the scale's."}
    )
    max_runs: int | None = field(
        default=None,
        metadata={"help": "Run at most N pending runs now (to time a few runs); the report still renders."},
    )
    estimate_only: bool = field(
        default=False,
        metadata={
            "help": "Run nothing: print the time estimate and re-render the report (from the stored runs, or "
            "from results.json.gz in --output_dir when no runs are stored)."
        },
    )
    report_note: str | None = field(
        default=None, metadata={"help": "A note for the report title, e.g. PILOT for a partial study."}
    )
    progress: bool = field(default=True, metadata={"help": "Show the progress bar (runs done / left / ETA)."})

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"--scale must be one of {list(SCALES)}, got {self.scale!r}.")
        if self.executor not in EXECUTORS:
            raise ValueError(f"--executor must be one of {list(EXECUTORS)}, got {self.executor!r}.")
        if self.num_workers < 0:
            raise ValueError(f"--num_workers must be >= 0, got {self.num_workers}.")
        names = SCALES[self.scale].arm_names
        unknown = [arm for arm in self.arms or () if arm not in names]
        if unknown:
            raise ValueError(f"--arms has unknown entries {unknown}; scale {self.scale!r} has {list(names)}.")
        if self.arms:
            self.arms = list(dict.fromkeys(self.arms))  # an arm named twice is run once
        for name in ("seeds", "max_runs", "threads_per_worker"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be >= 1, got {value}.")
        output = Path(self.output_dir).resolve()
        if self.runs_archive:
            archive = Path(self.runs_archive).resolve()
            if archive in (output, output / "runs"):
                raise ValueError(
                    f"--runs_archive {self.runs_archive} is --output_dir or its runs/ folder; give the archive a "
                    "folder of its own (e.g. docs/study-cpu/records with another --output_dir)."
                )
            study = next((folder for folder in (archive, archive.parent) if (folder / "study.json").is_file()), None)
            if study is not None:
                raise ValueError(
                    f"--runs_archive {self.runs_archive} is inside the study folder {study} (it holds study.json): "
                    "the archive would write into that study's runs. Give the archive a folder of its own."
                )
        if self.ray_address is not None and self.executor != "ray":
            raise ValueError(f"--ray_address needs --executor ray (got --executor {self.executor}).")

    def executor_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~hf_robattr.study.executors.run_jobs` that these flags set (where and
        how the runs execute)."""
        return {name: getattr(self, name) for name in _EXECUTOR_FLAGS}
