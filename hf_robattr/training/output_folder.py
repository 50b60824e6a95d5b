"""The run's output folder: what may be trained into, what ``--resume_from_checkpoint`` must name, and how a
finished run's ``results.json`` is kept until the run that replaces it has written its own.

A rerun into a finished folder (``--overwrite_output_dir`` or ``--resume_from_checkpoint``) must neither leave the old
``results.json`` claiming success beside new checkpoints nor lose it when the rerun fails before training. So the
old file stays in place while anything can still fail before training (the arguments, the data, the model, the
checkpoint's weights and optimizer state); once training has begun it is moved aside to
:data:`PREVIOUS_RESULTS_FILE`, and that copy is removed when the new ``results.json`` is written.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from hf_robattr.results_io import RESULTS_FILE


__all__ = [
    "PREVIOUS_RESULTS_FILE",
    "TRAINER_STATE_FILE",
    "SetAsidePreviousResults",
    "check_resume_checkpoint",
    "discard_previous_results",
    "refuse_finished_run",
    "remove_checkpoints",
]

PREVIOUS_RESULTS_FILE = f"{RESULTS_FILE}.previous"
"""Where a finished run's ``results.json`` waits while a rerun trains in its folder (not read as a run record)."""
LAST_CHECKPOINT = ("last", "true")
"""Values of ``--resume_from_checkpoint`` that mean the last ``checkpoint-N`` in ``--output_dir`` (as
``Trainer.train(resume_from_checkpoint=True)`` does)."""
TRAINER_STATE_FILE = "trainer_state.json"  # what ``Trainer.train`` reads from every checkpoint it resumes

logger = logging.getLogger(__name__)


def _resumes_in(checkpoint: Any, folder: Path) -> bool:
    """Whether ``--resume_from_checkpoint`` continues the run of ``folder``: ``last``, or a checkpoint inside it."""
    if not checkpoint:
        return False
    if str(checkpoint).lower() in LAST_CHECKPOINT:
        return True
    return Path(checkpoint).resolve().is_relative_to(folder.resolve())


def refuse_finished_run(args: Any) -> None:
    """Refuse an ``output_dir`` that holds a run, finished (its ``results.json``) or interrupted (``checkpoint-*``
    folders), or anything else, unless ``--overwrite_output_dir`` says to replace it or ``--resume_from_checkpoint``
    continues it (``last``, or a checkpoint inside ``output_dir``: one from another folder continues that run, not
    this one). An empty or missing folder is always taken."""
    folder = Path(args.output_dir)
    if args.overwrite_output_dir or _resumes_in(args.resume_from_checkpoint, folder) or not folder.is_dir():
        return
    elsewhere = (
        f" --resume_from_checkpoint {args.resume_from_checkpoint} is outside --output_dir, so it does not continue "
        "this folder's run."
        if args.resume_from_checkpoint
        else ""
    )
    finished = folder / RESULTS_FILE
    if finished.is_file():
        raise ValueError(
            f"--output_dir {args.output_dir!r} holds a finished run ({finished} exists).{elsewhere} Pass "
            "--overwrite_output_dir to replace it, --resume_from_checkpoint to continue it, or choose another "
            "--output_dir."
        )
    last = get_last_checkpoint(str(folder))
    if last is not None:
        raise ValueError(
            f"--output_dir {args.output_dir!r} holds an unfinished run (its last checkpoint is {last}).{elsewhere} "
            "Pass --resume_from_checkpoint last to continue it, --overwrite_output_dir to start over (its "
            "checkpoints are removed when the new run ends), or choose another --output_dir."
        )
    shown = sorted(path.name for path in folder.iterdir())
    if shown:
        raise ValueError(
            f"--output_dir {args.output_dir!r} is not empty ({', '.join(shown[:5])}{', ...' if len(shown) > 5 else ''})"
            f" and holds no run; the run writes its model, README.md and results.json there.{elsewhere} Pass "
            "--overwrite_output_dir to write into it anyway, or choose another --output_dir."
        )


def _checkpoints_note(output_dir: str | None) -> str:
    """What ``output_dir`` offers to resume from, for the message of a checkpoint that is not there."""
    if not output_dir or not Path(output_dir).is_dir():
        return ""
    last = get_last_checkpoint(output_dir)
    if last is not None:
        return f" The last checkpoint in --output_dir is {last}."
    finished = (Path(output_dir) / RESULTS_FILE).is_file()
    why = " (a finished run keeps its checkpoints only with --keep_checkpoints)" if finished else ""
    return f" --output_dir {output_dir!r} holds no checkpoint-* folder{why}."


def check_resume_checkpoint(args: Any) -> None:
    """Check that ``--resume_from_checkpoint`` (when set) names a Trainer checkpoint folder: a directory holding
    ``trainer_state.json``; ``last`` (or ``true``) is replaced by the last ``checkpoint-N`` in ``--output_dir``.
    Runs before anything in the output folder changes.

    Raises:
        ValueError: naming ``--resume_from_checkpoint``, what was found there and the checkpoints ``--output_dir``
            holds (none, once a finished run removed them).
    """
    checkpoint = args.resume_from_checkpoint
    if not checkpoint:
        return
    if str(checkpoint).lower() in LAST_CHECKPOINT:
        last = get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None
        if last is None:
            where = _checkpoints_note(args.output_dir) or f" --output_dir {args.output_dir!r} does not exist."
            raise ValueError(
                f"--resume_from_checkpoint {checkpoint} resumes the last checkpoint in --output_dir, and there is "
                f"none:{where} Nothing in --output_dir was changed."
            )
        logger.info("Resuming from the last checkpoint in --output_dir: %s", last)
        args.resume_from_checkpoint = checkpoint = last
    path = Path(checkpoint)
    if not path.exists():
        found = "no such folder"
    elif not path.is_dir():
        found = "a file, not a folder"
    elif not (path / TRAINER_STATE_FILE).is_file():
        found = f"a folder without {TRAINER_STATE_FILE}"
    else:
        return
    raise ValueError(
        f"--resume_from_checkpoint {checkpoint!r} must be a Trainer checkpoint folder (checkpoint-N, holding "
        f"{TRAINER_STATE_FILE}), found {found}.{_checkpoints_note(args.output_dir)} Nothing in --output_dir was "
        "changed."
    )


class SetAsidePreviousResults(TrainerCallback):
    """Move a finished run's ``results.json`` to :data:`PREVIOUS_RESULTS_FILE` when training begins (after the
    model, the data and a resumed checkpoint have loaded), on the main process; :func:`discard_previous_results`
    removes it once the new ``results.json`` is written."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Set the old ``results.json`` aside: from here on the folder holds a run in progress."""
        if args.process_index != 0:
            return
        finished = Path(args.output_dir) / RESULTS_FILE
        if finished.is_file():
            aside = finished.with_name(PREVIOUS_RESULTS_FILE)
            os.replace(finished, aside)
            logger.warning("Moved %s of the previous run to %s until this run writes its own.", finished, aside)


def discard_previous_results(output_dir: str | Path) -> None:
    """Remove the previous run's set-aside ``results.json`` (call it once the new one is written)."""
    (Path(output_dir) / PREVIOUS_RESULTS_FILE).unlink(missing_ok=True)


def remove_checkpoints(output_dir: str | Path) -> list[Path]:
    """Remove the Trainer's ``checkpoint-*`` folders (optimizer, scheduler and RNG states) from a finished run's
    ``output_dir``; the final model beside them stays. Returns what was removed."""
    removed = sorted(path for path in Path(output_dir).glob("checkpoint-*") if path.is_dir())
    for path in removed:
        shutil.rmtree(path)
    if removed:
        logger.info("Removed the Trainer checkpoints %s (--keep_checkpoints keeps them).", [p.name for p in removed])
    return removed
