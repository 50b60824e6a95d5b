"""hf_robattr.study: the reproduction study of the paper's three claims.

- :mod:`~hf_robattr.study.protocol`, :mod:`~hf_robattr.study.grid`, :mod:`~hf_robattr.study.scales`: what each run
  computes (per arm), which runs a study has, and the ``ci`` / ``cpu`` / ``gpu`` scales;
- :mod:`~hf_robattr.study.prepare`: the start points (AdamW warm starts, pretrained checkpoints);
- :mod:`~hf_robattr.study.run`: one run on the shared run pipeline, measured by :mod:`~hf_robattr.study.measure`
  on the evaluation pool of :mod:`~hf_robattr.study.pool`;
- :mod:`~hf_robattr.study.store`, :mod:`~hf_robattr.study.executors`: the resumable store, local and Ray executors;
  :mod:`~hf_robattr.study.archive`: the runs archive, a committed folder of compressed records the store mirrors;
- :mod:`~hf_robattr.study.stats`, :mod:`~hf_robattr.study.claims`: the statistics and study v2's pre-registered
  verdict rules; :mod:`~hf_robattr.study.record_reader`, :mod:`~hf_robattr.study.summaries`,
  :mod:`~hf_robattr.study.analysis`: records to findings (:mod:`~hf_robattr.study.trends`: slopes along lr/B);
- study v3's analysis: :mod:`~hf_robattr.study.cell_effects` (slopes with a cell random effect),
  :mod:`~hf_robattr.study.checks_v3` (manipulation check, margins, positive controls, lack of fit, fit covariate),
  :mod:`~hf_robattr.study.rules_v3` (one rule shape), :mod:`~hf_robattr.study.error_rates_v3` (the rules' simulated
  error rates), :mod:`~hf_robattr.study.analysis_v3` (all of it, per arm);
- :mod:`~hf_robattr.study.results`, :mod:`~hf_robattr.study.report` (v3's sections in
  :mod:`~hf_robattr.study.report_v3` and :mod:`~hf_robattr.study.report_v3_checks`), :mod:`~hf_robattr.study.plots`:
  ``results.json.gz``, ``report.md`` and the figures;
- :func:`reproduce`: all of it, as ``recipes/reproduce_paper.py`` runs it.
"""

from .analysis import Analysis, analyse
from .archive import RunArchive
from .arguments import StudyArguments
from .claims import ClaimTest, Interaction, claim_1_tests, claim_2_tests, claim_3_tests
from .executors import EXECUTORS, run_jobs
from .grid import ArmGrid, Cell, RunSpec, arm_specs
from .protocol import ArmProtocol, WarmStart
from .reproduce import StudyOutcome, reproduce
from .results import load_results, save_results
from .run import run_one
from .scales import SCALES, StudySettings, get_settings
from .stats import Slope, block_regression, block_slope, holm, mean_ci, power_tost, power_two_sided
from .store import RunStore


__all__ = [
    "EXECUTORS",
    "SCALES",
    "Analysis",
    "ArmGrid",
    "ArmProtocol",
    "Cell",
    "ClaimTest",
    "Interaction",
    "RunArchive",
    "RunSpec",
    "RunStore",
    "Slope",
    "StudyArguments",
    "StudyOutcome",
    "StudySettings",
    "WarmStart",
    "analyse",
    "arm_specs",
    "block_regression",
    "block_slope",
    "claim_1_tests",
    "claim_2_tests",
    "claim_3_tests",
    "get_settings",
    "holm",
    "load_results",
    "mean_ci",
    "power_tost",
    "power_two_sided",
    "reproduce",
    "run_jobs",
    "run_one",
    "save_results",
]
