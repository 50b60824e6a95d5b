"""hf_robattr.study: the reproduction study of the paper's three claims.

- :mod:`~hf_robattr.study.grid`: cells, runs and per-scale settings (``ci``, ``cpu``, ``gpu``);
- :mod:`~hf_robattr.study.runner`: train and measure one run;
- :mod:`~hf_robattr.study.store`: one JSON file per finished run (resumable);
- :mod:`~hf_robattr.study.execute`: parallel workers (spawn) with a progress bar;
- :mod:`~hf_robattr.study.stats`: means with CIs, Welch differences, rank trends (scipy);
- :mod:`~hf_robattr.study.analysis`, :mod:`~hf_robattr.study.plots`, :mod:`~hf_robattr.study.report`: findings,
  figures, ``report.md`` and ``results.json``;
- :func:`reproduce`: all of it, as ``recipes/reproduce_paper.py`` runs it.
"""

from .analysis import analyse, run_values
from .arguments import StudyArguments
from .estimate import estimate_seconds, format_duration
from .execute import pending_runs, run_study
from .grid import SCALES, Cell, RunSpec, StudySettings, build_grid, get_settings
from .report import write_report
from .runner import run_one
from .stats import Difference, MeanCI, Trend, difference_ci, mean_ci, rank_trend
from .store import RunStore
from .study import reproduce, study_specs


__all__ = [
    "SCALES",
    "Cell",
    "Difference",
    "MeanCI",
    "RunSpec",
    "RunStore",
    "StudyArguments",
    "StudySettings",
    "Trend",
    "analyse",
    "build_grid",
    "difference_ci",
    "estimate_seconds",
    "format_duration",
    "get_settings",
    "mean_ci",
    "pending_runs",
    "rank_trend",
    "reproduce",
    "run_one",
    "run_study",
    "run_values",
    "study_specs",
    "write_report",
]
