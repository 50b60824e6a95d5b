"""The metric module passes evaluate's own module test: no bare ``**kwargs`` in ``_compute``, and its docstring
examples run under ``doctest.testmod`` (as ``evaluate``'s ``tests/test_metric_common.py`` runs every module)."""

import doctest
import importlib
import inspect
from pathlib import Path
from unittest.mock import patch

import evaluate
import pytest
import torch

import hf_robattr


def test_module_passes_evaluates_common_module_test(tmp_path, monkeypatch):
    folder = str(Path(hf_robattr.metric_path()).parent)
    monkeypatch.syspath_prepend(str(tmp_path))  # evaluate imports the copied module as modules.metrics...
    factory = evaluate.loading.evaluation_module_factory(
        folder, module_type="metric", dynamic_modules_path=str(tmp_path / "modules")
    )
    module = importlib.import_module(factory.module_path)
    metric_class = evaluate.loading.import_main_class(module.__name__)
    parameters = inspect.signature(metric_class._compute).parameters
    assert all(p.kind != p.VAR_KEYWORD for p in parameters.values())
    assert {"model", "inputs", "config", *hf_robattr.RobustnessConfig.field_names()} <= set(parameters)

    def load_local(name, *args, **kwargs):  # what evaluate's test does: load the module from its folder
        assert name == "attribution_robustness", name
        return evaluate.loading.load(folder, *args, **kwargs)

    doctest.ELLIPSIS_MARKER = "[...]"
    with patch("evaluate.load", side_effect=load_local):
        results = doctest.testmod(module, verbose=False, raise_on_error=True)
    assert results.failed == 0 and results.attempted > 5


def test_a_broken_example_fails():
    """The doctest run above would catch a wrong expected value (a check of the check)."""
    broken = ">>> 1 + 1\n3\n"
    test = doctest.DocTestParser().get_doctest(broken, {}, "broken", None, 0)
    runner = doctest.DocTestRunner(verbose=False)
    runner.run(test, out=lambda _: None)
    assert runner.failures == 1


def test_unknown_compute_option_is_refused_by_name():
    metric = hf_robattr.AttributionRobustness()
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['epsilom'\]"):
        metric.compute(model=torch.nn.Linear(2, 2), inputs=torch.rand(1, 2), epsilom=0.1)
