"""``import hf_robattr`` is light, yet registers the Auto classes and the metric as soon as their libraries load."""

import importlib
import subprocess
import sys

import pytest

import hf_robattr


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_bare_import_loads_no_heavy_library():
    """Nor do the warning categories (pytest-xdist's controller imports them to rebuild a recorded warning) or the
    push (``hf-robattr push``)."""
    out = run_python(
        "import sys, hf_robattr, hf_robattr.cli\n"
        "from hf_robattr.warning_types import SaturationWarning, SpecialTokensWarning\n"
        "from hf_robattr.hub import HubPushError, push_to_hub\n"
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


def test_the_top_level_api_is_curated():
    names = hf_robattr.__all__[1:]
    assert hf_robattr.__all__[0] == "__version__" and 40 <= len(names) <= 60
    assert len(set(names)) == len(names)
    for name in names:
        home = importlib.import_module(f"hf_robattr.{hf_robattr._HOMES[name]}")
        assert name in home.__all__, (name, home.__name__)
        assert getattr(hf_robattr, name) is getattr(home, name)
    assert set(names) <= set(dir(hf_robattr))


def test_other_public_names_stay_in_their_subpackage():
    from hf_robattr.training import build_run_record

    assert "build_run_record" not in hf_robattr.__all__
    with pytest.raises(
        AttributeError, match=r"import it from its subpackage, e.g. hf_robattr.training.build_run_record"
    ):
        hf_robattr.build_run_record  # noqa: B018
    assert hf_robattr.training.build_run_record is build_run_record


def test_unknown_attribute_is_an_attribute_error():
    try:
        hf_robattr.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("expected AttributeError")


def test_the_hub_names_load_from_their_modules_on_first_use():
    import hf_robattr.hub as hub

    assert sorted(hub.__all__) == sorted(hub._HOMES) and set(hub.__all__) <= set(dir(hub))
    for name in hub.__all__:
        assert getattr(hub, name) is getattr(importlib.import_module(f"hf_robattr.hub.{hub._HOMES[name]}"), name)
    assert hub.space is importlib.import_module("hf_robattr.hub.space")  # its modules too, as attributes
    with pytest.raises(AttributeError, match="no_such_name"):
        hub.no_such_name  # noqa: B018


def test_the_warning_categories_are_the_scoring_cores():
    from hf_robattr.robustness.perturbations import SpecialTokensWarning
    from hf_robattr.robustness.saturation import SaturationWarning
    from hf_robattr.warning_types import SaturationWarning as light_saturation
    from hf_robattr.warning_types import SpecialTokensWarning as light_special_tokens

    assert SaturationWarning is light_saturation and SpecialTokensWarning is light_special_tokens
    assert SaturationWarning.__module__ == SpecialTokensWarning.__module__ == "hf_robattr.warning_types"
