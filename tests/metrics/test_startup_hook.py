"""After an install, a plain ``evaluate.load("attribution_robustness")`` works in a fresh interpreter that never
imports hf_robattr: from any directory, offline, with a fresh module cache, giving the core's numbers.

The wheels are built with setuptools' PEP 517 backend from a copy of the project, and the editable one is unpacked
into a new virtual environment's ``site-packages`` the way pip installs a pure-Python wheel; Python's own start-up
(``site``) then runs the ``.pth`` hook. The other installed packages come from this interpreter's ``site-packages``
(a path line in a ``.pth`` sorted last, whose own ``.pth`` files ``site`` does not run).
"""

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from hf_robattr import _build


ROOT = Path(__file__).resolve().parents[2]
setuptools = pytest.importorskip("setuptools", minversion="68", reason="the build needs setuptools >= 68")


def _project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "hf_robattr", copy / "hf_robattr", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _build_wheel(project: Path, kind: str) -> Path:
    out = project.parent / f"dist-{kind}"
    out.mkdir()
    code = f"from setuptools import build_meta; print(build_meta.build_{kind}({str(out)!r}))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return out / result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("kind", [pytest.param("wheel", id="wheel"), pytest.param("editable", id="editable")])
def test_both_wheels_install_the_startup_hook_and_record_it(tmp_path, kind):
    wheel = _build_wheel(_project_copy(tmp_path), kind)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        record = archive.read(next(n for n in names if n.endswith(".dist-info/RECORD"))).decode()
        pth = archive.read(_build.PTH_FILE).decode()
        startup = archive.read(f"{_build.STARTUP_MODULE}.py")
    assert pth == "import _hf_robattr_startup; _hf_robattr_startup.install_metric_hook()\n"
    assert startup == (ROOT / "hf_robattr" / "_lazy.py").read_bytes()
    # in RECORD with a hash, so that `pip uninstall hf_robattr` removes both files
    for name in (_build.PTH_FILE, f"{_build.STARTUP_MODULE}.py"):
        assert any(line.startswith(f"{name},sha256=") for line in record.splitlines()), name


FRESH_INTERPRETER = """
import sys
assert "hf_robattr" not in sys.modules, "hf_robattr was imported at start-up"
import torch
import evaluate
from transformers import ViTConfig, ViTForImageClassification

torch.manual_seed(0)
config = ViTConfig(image_size=8, patch_size=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=32, num_labels=3)
model = ViTForImageClassification(config).eval()
pixel_values = torch.rand(3, 3, 8, 8)
settings = dict(methods=["saliency", "rollout"], epsilon=0.05, num_steps=2, num_samples=2, progress=False)
metric = evaluate.load("attribution_robustness")
scores = metric.compute(model=model, inputs=pixel_values, **settings)

import hf_robattr

core = hf_robattr.evaluate_attribution_robustness(model, pixel_values, **settings)
assert set(scores) == set(core)
assert all(scores[k] == core[k] or (scores[k] != scores[k] and core[k] != core[k]) for k in core), (scores, core)
print("LOADED", type(metric).__module__, sorted(scores)[:2])
"""


def _fresh_environment(tmp_path: Path) -> Path:
    """A new venv with the editable wheel unpacked into it, and this interpreter's packages after it."""
    wheel = _build_wheel(_project_copy(tmp_path), "editable")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(purelib, [n for n in archive.namelist() if not n.split("/", 1)[0].endswith(".data")])
    parents = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (Path(purelib) / "zz_parent_site_packages.pth").write_text("\n".join(parents) + "\n")
    return python


def _run_fresh(python: Path, tmp_path: Path, **extra_env: str) -> subprocess.CompletedProcess:
    cwd = tmp_path / "anywhere"
    cwd.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_EVALUATE_OFFLINE")}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_MODULES_CACHE=str(tmp_path / "fresh_modules"),
        HF_HOME=str(tmp_path / "hf_home"),
        HF_ENDPOINT="http://127.0.0.1:9",  # a closed port: any Hub request fails at once
        HF_UPDATE_DOWNLOAD_COUNTS="0",
        **extra_env,
    )
    return subprocess.run(
        [str(python), "-c", FRESH_INTERPRETER], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_bare_load_works_in_a_fresh_interpreter_after_install_and_only_because_of_the_hook(tmp_path):
    python = _fresh_environment(tmp_path)
    result = _run_fresh(python, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LOADED evaluate_modules.metrics.attribution_robustness." in result.stdout
    # the control: without the start-up hook, evaluate itself cannot find the name
    disabled = _run_fresh(python, tmp_path, HF_ROBATTR_NO_STARTUP_HOOK="1")
    assert disabled.returncode != 0
    assert "Couldn't find a module script" in disabled.stderr and "attribution_robustness" in disabled.stderr


def test_the_startup_hook_watches_evaluate_only_can_be_turned_off_and_never_breaks_evaluate(monkeypatch):
    from hf_robattr import _lazy

    watched = []
    monkeypatch.setattr(_lazy, "after_import", lambda name, callback: watched.append(name))
    monkeypatch.delenv(_lazy.DISABLE_ENV, raising=False)
    _lazy.install_metric_hook()
    monkeypatch.setenv(_lazy.DISABLE_ENV, "1")
    _lazy.install_metric_hook()
    assert watched == ["evaluate"]

    def broken_install(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(_lazy, "importlib", SimpleNamespace(import_module=broken_install))
    with pytest.warns(RuntimeWarning, match=r"could not make evaluate.load\('attribution_robustness'\) loadable"):
        _lazy._register_packaged_metric()  # a warning, not an error inside the user's `import evaluate`
