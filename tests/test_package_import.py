"""``import hf_robattr`` is light, yet registers the Auto classes and the metric as soon as their libraries load."""

import importlib
import subprocess
import sys

import hf_robattr


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_bare_import_loads_no_heavy_library():
    out = run_python(
        "import sys, hf_robattr, hf_robattr.cli\n"
        "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'evaluate', 'gradio') if m in sys.modules))"
    )
    assert out == "[]"


def test_registrations_follow_the_libraries():
    out = run_python(
        "import hf_robattr\n"
        "from transformers import CONFIG_MAPPING\n"
        "import evaluate.loading\n"
        "print('robattr-vit' in CONFIG_MAPPING, 'robattr-bert' in CONFIG_MAPPING,\n"
        "      getattr(evaluate.loading.evaluation_module_factory, '_hf_robattr_metric_hook', False))"
    )
    assert out == "True True True"


def test_registration_when_the_libraries_came_first():
    out = run_python(
        "import transformers, evaluate.loading\n"
        "import hf_robattr\n"
        "from transformers import CONFIG_MAPPING\n"
        "print('robattr-vit' in CONFIG_MAPPING,\n"
        "      getattr(evaluate.loading.evaluation_module_factory, '_hf_robattr_metric_hook', False))"
    )
    assert out == "True True"


def test_public_names_are_the_subpackages_names():
    expected = ["__version__"]
    for name in hf_robattr._PUBLIC_SUBPACKAGES:
        expected += importlib.import_module(f"hf_robattr.{name}").__all__
    assert hf_robattr.__all__ == expected
    assert len(set(expected)) == len(expected), "two subpackages export the same name"
    for name in expected[1:]:
        assert getattr(hf_robattr, name) is getattr(importlib.import_module(f"hf_robattr.{_home(name)}"), name)
    assert set(expected) <= set(dir(hf_robattr))


def _home(name: str) -> str:
    return next(
        sub for sub in hf_robattr._PUBLIC_SUBPACKAGES if name in importlib.import_module(f"hf_robattr.{sub}").__all__
    )


def test_unknown_attribute_is_an_attribute_error():
    try:
        hf_robattr.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("expected AttributeError")
