"""`evaluate.load("attribution_robustness")` works offline, from any directory, with a fresh module cache."""

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

import hf_robattr


@pytest.fixture
def black_hole_endpoint() -> Iterator[str]:
    """A loopback server that accepts connections and never answers: any Hub request made against it hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for connection in accepted:
        connection.close()
    server.close()


def _clean_env(tmp_path, endpoint: str, offline: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE")}
    env.update(HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HOME=str(tmp_path / "hf_home"), HF_ENDPOINT=endpoint)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def _run(code: str, cwd, env: dict[str, str], timeout: float = 90) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


LOAD_ALL_WAYS = """
import evaluate, hf_robattr
by_name = evaluate.load("attribution_robustness")
by_path = evaluate.load(hf_robattr.metric_path())
direct = hf_robattr.AttributionRobustness()
for metric in (by_name, by_path, direct):
    assert metric.name == "attribution_robustness", metric.name
    assert "2605.29983" in metric.citation
print("OK", type(by_name).__module__)
"""


@pytest.mark.parametrize(
    "offline", [pytest.param(False, id="no-HF_HUB_OFFLINE"), pytest.param(True, id="HF_HUB_OFFLINE")]
)
def test_load_by_name_never_touches_the_network(tmp_path, black_hole_endpoint, offline):
    # Against this endpoint evaluate's own Hub lookup hangs (100 s per request); the hook must not ask it.
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    out = _run(LOAD_ALL_WAYS, workdir, _clean_env(tmp_path, black_hole_endpoint, offline), timeout=60)
    assert out.startswith("OK evaluate_modules.metrics.attribution_robustness.")
    assert (tmp_path / "modules" / "evaluate_modules" / "metrics" / "attribution_robustness").is_dir()


def test_installed_metric_loads_without_importing_hf_robattr(tmp_path):
    modules = tmp_path / "modules"
    script = hf_robattr.install_metric(modules)
    assert script.parent.parent.name == "evaluate-metric--attribution_robustness"
    assert len(script.parent.name) == 64
    # Closed loopback port: evaluate's Hub lookup fails at once, then it falls back to the installed copy.
    code = "import sys, evaluate\nm = evaluate.load('attribution_robustness')\nprint(m.name, type(m).__module__)\n"
    # Without the start-up hook (which would load the packaged script first): the installed copy alone loads.
    env = {**_clean_env(tmp_path, "http://127.0.0.1:9", offline=False), "HF_ROBATTR_NO_STARTUP_HOOK": "1"}
    out = _run(code, tmp_path, env, timeout=60)
    assert "attribution_robustness evaluate_modules.metrics.evaluate-metric--attribution_robustness." in out


def test_local_folder_still_shadows_the_name(tmp_path, monkeypatch):
    from hf_robattr.metrics.loading import _claims

    assert _claims("attribution_robustness", None)
    assert not _claims("attribution_robustness", "comparison")
    assert not _claims("accuracy", None)
    (tmp_path / "attribution_robustness").mkdir()
    (tmp_path / "attribution_robustness" / "attribution_robustness.py").write_text("")
    monkeypatch.chdir(tmp_path)
    assert not _claims("attribution_robustness", None)


SHADOW = """
import warnings, evaluate, hf_robattr
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    shadowed = evaluate.load("attribution_robustness")
print("WARNED" if any("not the metric packaged" in str(w.message) for w in caught) else "SILENT")
packaged = evaluate.load(hf_robattr.metric_path())
print(type(shadowed).__doc__, "|", type(packaged).__name__)
"""


def test_a_local_script_shadows_the_name_with_a_warning_and_the_packaged_path_avoids_it(tmp_path):
    """evaluate (0.4.x) runs ./attribution_robustness/attribution_robustness.py before anything else."""
    folder = tmp_path / "untrusted" / "attribution_robustness"
    folder.mkdir(parents=True)
    (folder / "attribution_robustness.py").write_text(
        "import datasets\nimport evaluate\nprint('LOCAL CODE RAN')\n\n\n"
        "class AttributionRobustness(evaluate.Metric):\n    'the local impostor'\n\n"
        "    def _info(self):\n        return evaluate.MetricInfo(description='', citation='', "
        "inputs_description='', features=datasets.Features({}))\n\n    def _compute(self):\n        return {}\n"
    )
    env = _clean_env(tmp_path, "http://127.0.0.1:9", offline=True)
    out = _run(SHADOW, cwd=tmp_path / "untrusted", env=env)
    assert out.count("LOCAL CODE RAN") == 1  # the bare name ran it, the packaged path did not
    assert "WARNED" in out and "the local impostor | AttributionRobustness" in out


def test_register_is_idempotent():
    import evaluate.loading

    before = evaluate.loading.evaluation_module_factory
    hf_robattr.metrics.register_metric()
    assert evaluate.loading.evaluation_module_factory is before


def test_metric_info_documents_arguments_and_keys():
    metric = hf_robattr.AttributionRobustness()
    for reference in ("2605.29983", "ghorbani2019", "chen2019"):
        assert reference in metric.citation
    doc = metric.inputs_description
    for argument in (
        "model", "inputs", "targets", "methods", "attack", "epsilon", "norm", "num_steps", "step_size", "k",
        "restarts", "num_samples", "seed", "batch_size", "device", "return_per_sample", "image_processor",
        "tokenizer", "label_column",
    ):  # fmt: skip
        assert f"    {argument} (" in doc, argument
    for key in ("topk_intersection", "kendall_tau", "spearman", "max_sensitivity", "prediction_change_rate"):
        assert f'"{{method}}/{key}"' in doc, key
    assert '"num_samples"' in doc
    assert metric.compute.__doc__.endswith(metric.inputs_description)
