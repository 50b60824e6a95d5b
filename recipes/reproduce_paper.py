#!/usr/bin/env python
"""Reproduce the paper's three claims: train the grid of regimes, measure attribution robustness and curvature,
and write ``report.md`` (claims with 95% CIs, tables, PNG plots) and ``results.json``.

Scales (``--scale``)::

    python recipes/reproduce_paper.py --scale ci --output_dir outputs/study-ci            # smoke test, ~1-2 min
    python recipes/reproduce_paper.py --scale cpu --output_dir outputs/study-cpu --num_workers 2
    accelerate launch recipes/reproduce_paper.py --scale gpu --output_dir outputs/study-gpu --num_workers 1

The study is resumable: each finished run is stored under ``<output_dir>/runs/`` and never recomputed, so rerunning
the same command continues where it stopped. ``--max_runs N`` runs only N pending runs (to time a few and print the
estimate of the whole grid); ``--estimate_only`` prints the estimate and re-renders the report. ``--dataset_name``
swaps the image dataset (an embedded name or a Hub id such as ``uoft-cs/cifar10``). All logic is in
``hf_robattr.study``.
"""

import logging
import sys

from transformers import HfArgumentParser

from hf_robattr.study import StudyArguments, reproduce


def main(argv: list[str] | None = None) -> dict:
    """Parse the arguments (flags or one JSON file), run the study, write the report; return its summary."""
    parser = HfArgumentParser(StudyArguments)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        (args,) = parser.parse_json_file(json_file=argv[0])
    else:
        (args,) = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    return reproduce(args)


if __name__ == "__main__":
    main()
