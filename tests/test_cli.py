"""The hf-robattr CLI: one-line errors with exit status 2 for user errors, and a light import for --help."""

import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import ModelCard
from run_folders import UNREACHABLE

from hf_robattr.cli import main
from hf_robattr.hub import save_model_card


METRIC_SPACE = "some-org/attribution_robustness"
HEAVY_MODULES = ("torch", "transformers", "datasets", "gradio", "matplotlib", "evaluate")

PROBE = f"""
import json, sys
HEAVY = {HEAVY_MODULES!r}
from hf_robattr.cli import main
codes = []
for argv in (["--help"], ["card"], ["push", "only-one-argument"], ["nosuchcommand"]):
    try:
        main(argv)
    except SystemExit as exit:
        codes.append(exit.code)
print(json.dumps({{"codes": codes, "heavy": [m for m in HEAVY if m in sys.modules]}}))
"""


def test_help_and_argument_errors_import_nothing_heavy(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 2, 2, 2]
    assert report["heavy"] == []


def test_argument_errors_exit_2(capsys):
    for argv in (["card"], ["push", "folder"], ["demo"], ["bogus"], ["demo", "a", "b", "c"]):
        with pytest.raises(SystemExit) as exit:
            main(argv)
        assert exit.value.code == 2, argv
    assert "usage: hf-robattr" in capsys.readouterr().err


def _results(run_dir, content) -> None:
    text = content if isinstance(content, str) else json.dumps(content)
    (run_dir / "results.json").write_text(text)


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param({"model": [1, 2]}, ["section 'model' must be a JSON object", "list"], id="model-list"),
        pytest.param({"eval": "good"}, ["section 'eval'", "str"], id="eval-string"),
        pytest.param({"robustness": 0.5}, ["section 'robustness'", "float"], id="robustness-number"),
        pytest.param({"log_history": "oops"}, ["'log_history' must be a list of JSON objects", "str"], id="log-str"),
        pytest.param({"log_history": [1, 2]}, ["'log_history' must be a list of JSON objects"], id="log-ints"),
        pytest.param({"log_history": {"loss": 1}}, ["'log_history'", "dict"], id="log-dict"),
        pytest.param({"robustness_config": {"attack": "top_k"}}, ["robustness_config", "top_k"], id="bad-attack"),
        pytest.param({"robustness_config": {"epsilon": -1}}, ["robustness_config", "epsilon"], id="bad-epsilon"),
        pytest.param({"robustness_config": {"bogus": 1}}, ["robustness_config", "bogus"], id="unknown-setting"),
        pytest.param([1, 2], ["must hold a JSON object", "list"], id="top-level-list"),
        pytest.param("{not json", ["not valid JSON"], id="not-json"),
        pytest.param(b"\xff\xfe\x00garbage", ["not valid JSON"], id="not-utf8"),
    ],
)
def test_card_on_malformed_results_is_one_line_exit_2(run_dir, content, words, capsys):
    if isinstance(content, bytes):
        (run_dir / "results.json").write_bytes(content)
    else:
        _results(run_dir, content)
    assert main(["card", str(run_dir)]) == 2
    line = _one_line_error(capsys)
    assert line.startswith("hf-robattr card: error:") and "results.json" in line
    for word in words:
        assert word in line, (word, line)


def test_card_user_errors(run_dir, tmp_path, capsys):
    assert main(["card", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in _one_line_error(capsys)
    assert main(["card", str(tmp_path)]) == 2
    assert "No results.json" in _one_line_error(capsys)
    assert main(["card", str(run_dir), "--model_id", "no-slash"]) == 2
    assert "ORG/NAME" in _one_line_error(capsys)
    assert main(["card", str(run_dir), "--template", str(tmp_path / "nope.md")]) == 2
    assert "template" in _one_line_error(capsys)


def test_push_user_errors(run_dir, capsys):
    assert main(["push", str(run_dir), "org/tiny", "--space_id", "org/tiny-demo"]) == 2
    assert "need `--space`" in _one_line_error(capsys)
    assert main(["push", str(run_dir), "org/tiny", "--space_requirement", "hf_robattr"]) == 2
    assert "need `--space`" in _one_line_error(capsys)
    assert main(["push", str(run_dir), "not a repo"]) == 2
    assert "ORG/NAME" in _one_line_error(capsys)


def test_demo_on_a_folder_without_a_model(tmp_path, capsys):
    pytest.importorskip("gradio")
    (tmp_path / "results.json").write_text("{}")
    assert main(["demo", str(tmp_path)]) == 2
    line = _one_line_error(capsys)
    assert "holds no model" in line and "config.json" in line
    assert main(["demo", "not/a/folder/nor/id"]) == 2
    assert "neither an existing folder nor a Hub model id" in _one_line_error(capsys)


def test_a_folder_that_cannot_hold_a_model_fails_before_torch_and_gradio_load(tmp_path):
    """The folder argument is checked first, in a fresh interpreter: the error comes without importing torch or
    Gradio (~8 s), in the words the loader uses."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    code = (
        "import sys\nfrom hf_robattr.cli import main\n"
        f"codes = [main(['demo', {str(tmp_path / 'empty')!r}]), main(['demo', {str(tmp_path / 'notes.txt')!r}])]\n"
        "print(codes, [name for name in ('torch', 'gradio', 'transformers') if name in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[2, 2] []", result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("hf-robattr demo: error:")]
    assert len(errors) == 2
    assert "holds no model: missing config.json and model weights" in errors[0]
    assert "is a file; expected a run folder or a Hub model id" in errors[1]


def test_demo_without_gradio_says_how_to_install_the_extra(tmp_path, capsys, monkeypatch):
    # hf_robattr is not on PyPI: the hint installs the extra from a clone, never `pip install 'hf_robattr[demo]'`.
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` raise ImportError
    (tmp_path / "config.json").write_text("{}")  # a folder that passes the first check: Gradio is asked for next
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert main(["demo", str(tmp_path)]) == 2
    line = _one_line_error(capsys)
    assert "needs Gradio" in line and "pip install -e '.[demo]' in a clone of hf_robattr" in line


@pytest.mark.parametrize("port", ["70000", "0", "http"])
def test_demo_port_out_of_range_is_a_usage_error(tmp_path, capsys, port):
    with pytest.raises(SystemExit) as exited:
        main(["demo", str(tmp_path), "--port", port])
    assert exited.value.code == 2
    assert "--port: must be a port number 1-65535" in capsys.readouterr().err


def test_push_metric_local_dir_keeps_a_model_card_unless_overwrite(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "README.md").write_text("# my model card")
    assert main(["push-metric", "org/attribution_robustness", "--local_dir", str(folder)]) == 2
    assert "overwrite" in _one_line_error(capsys)
    assert (folder / "README.md").read_text() == "# my model card"
    assert main(["push-metric", "org/attribution_robustness", "--local_dir", str(folder), "--overwrite"]) == 0
    assert (folder / "README.md").read_text() != "# my model card"


def test_traceback_flag_shows_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"results\.json"):
        main(["--traceback", "card", str(tmp_path)])


@pytest.mark.parametrize("name", ["results_vit_c4f9072.json", "results_bert_c4f9072.json"])
def test_card_reads_a_results_file_written_by_main(name, tmp_path, capsys):
    """``hf-robattr card`` on the results.json of a run of main before the typed record: the card is written and
    shows the calibration record and the saturated measures."""
    fixture = Path(__file__).parent / "training" / "fixtures" / name
    (tmp_path / "results.json").write_text(fixture.read_text())
    assert main(["card", str(tmp_path)]) == 0
    card = (tmp_path / "README.md").read_text()
    assert "model-index" in card and "saliency/kendall_tau" in card
    if "bert" in name:
        assert "aturated" in card  # the card marks the measures at their floor or ceiling
    else:
        assert "The radius was calibrated (`epsilon='auto'`)" in card


def test_cli_card_then_push_error(run_dir, online, monkeypatch, capsys):
    assert main(["card", str(run_dir), "--model_id", "org/tiny", "--tags", "demo"]) == 0
    card = ModelCard.load(run_dir / "README.md")
    assert "demo" in card.data.tags and "org/tiny" in card.text
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", UNREACHABLE)
    assert main(["push", str(run_dir), "org/tiny", "--token", "hf_not_a_token"]) == 2
    assert "hf-robattr push: error:" in capsys.readouterr().err


def test_console_script_push_error(run_dir, tmp_path):
    save_model_card(run_dir)
    # PYTHONPROFILEIMPORTTIME: every import is listed on stderr, so the test sees what the command loaded
    env = dict(os.environ, HF_ENDPOINT=UNREACHABLE, HF_TOKEN="hf_not_a_token", PYTHONPROFILEIMPORTTIME="1")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # either one puts huggingface_hub offline
        env.pop(name, None)
    script = Path(sys.executable).with_name("hf-robattr")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "hf_robattr.cli"]
    result = subprocess.run(
        [*command, "push", str(run_dir), "org/tiny"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("hf-robattr push: error:")]
    assert "127.0.0.1:9" in line and "retry with" in line
    imported = {
        line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    }
    assert "huggingface_hub" in imported
    assert not imported & {"torch", "transformers", "matplotlib"}  # the upload alone, not the card renderer


def test_the_command_writes_the_space_or_says_in_one_line_what_is_wrong(tmp_path, capsys):
    assert main(["push-metric", METRIC_SPACE, "--local_dir", str(tmp_path / "space")]) == 0
    assert (tmp_path / "space" / "attribution_robustness.py").is_file()
    assert f"hf-robattr push-metric {METRIC_SPACE}" in capsys.readouterr().out
    assert main(["push-metric", "attribution_robustness"]) == 2
    assert "hf-robattr push-metric: error: `repo_id` must look like 'ORG/NAME'" in capsys.readouterr().err
