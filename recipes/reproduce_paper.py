#!/usr/bin/env python
r"""Reproduce the paper's three claims: train the study's grid of regimes, measure attribution robustness on one
common evaluation set, test each claim with its pre-registered rule, and write ``report.md``, the figures and
``results.json.gz``.

Scales (``--scale``)::

    python recipes/reproduce_paper.py --scale ci --output_dir outputs/study-ci          # smoke test, < 2 min
    nohup nice -n 5 python recipes/reproduce_paper.py --scale cpu --output_dir outputs/study-v3 \
        --num_workers 2 --threads_per_worker 1 > outputs/study-v3.log 2>&1 &                 # study v3
    python recipes/reproduce_paper.py --scale gpu --output_dir outputs/study-gpu --executor ray --ray_address auto

The study is resumable: each finished run is stored under ``<output_dir>/runs/`` and never recomputed, so rerunning
the same command continues where it stopped (also across executors). ``--max_runs N`` runs only N pending runs;
``--estimate_only`` runs nothing, prints the time estimate and re-renders the report (from ``results.json.gz``
alone when the folder has no runs, e.g. ``docs/study-cpu``). The exit status is 1 when any run of the grid ended
in an error (after the report is written). All logic is in ``hf_robattr.study``; see ``docs/study.md``.
"""

import gc
import logging
import sys

from transformers import HfArgumentParser

from hf_robattr.study import StudyArguments, StudyOutcome, reproduce
from hf_robattr.study.store import StudyDirectoryError
from hf_robattr.training import parse_arguments


def parse(argv: list[str] | None = None) -> StudyArguments:
    """The study's arguments from ``argv`` (flags or one JSON file; ``sys.argv`` when ``None``), checked; nothing is
    read or written."""
    (args,) = parse_arguments(HfArgumentParser(StudyArguments), argv)
    return args


def main(argv: list[str] | None = None) -> StudyOutcome:
    """Parse the arguments (flags or one JSON file), run the study, write the report; return what it did."""
    args = parse(argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.WARNING)
    return reproduce(args)


if __name__ == "__main__":
    # The imported libraries live as long as this process: frozen, they stay out of the full garbage collection
    # that starts every Trainer.train() (~0.3 s each, 15% of a ci run).
    gc.freeze()
    try:
        sys.exit(main().exit_code)
    except StudyDirectoryError as error:  # a folder this study cannot use: say how to recover, no traceback
        sys.exit(f"reproduce_paper.py: error: {error}")
