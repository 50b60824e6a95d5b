"""The metric as a Hub Space: the folder loads by path, and by ``ORG/NAME`` from a Hub that serves it (a loopback
server standing in for huggingface.co); the real push is gated on a token."""

import functools
import http.server
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import evaluate
import huggingface_hub
import pytest
from huggingface_hub import SpaceCard

import hf_robattr
from hf_robattr.metrics.space import MetricSpaceError


REPO_ID = "some-org/attribution_robustness"


def test_the_space_folder_holds_the_packaged_script_a_static_card_and_loads_by_path(tmp_path):
    folder = tmp_path / "attribution_robustness"
    script = hf_robattr.write_metric_space(folder, REPO_ID)
    assert script == folder / "attribution_robustness.py"
    assert script.read_bytes() == Path(hf_robattr.metric_path()).read_bytes()
    card = SpaceCard.load(folder / "README.md")
    assert card.data.sdk == "static" and card.data.app_file == "index.html"
    assert {"evaluate", "metric"} <= set(card.data.tags)
    assert f'evaluate.load("{REPO_ID}")' in card.text and "needs hf_robattr installed" in card.text
    assert REPO_ID in (folder / "index.html").read_text()
    metric = evaluate.load(str(folder))
    assert type(metric).__name__ == "AttributionRobustness" and "2605.29983" in metric.citation


@pytest.mark.parametrize(
    "repo_id", ["attribution_robustness", "org/attribution-robustness", "org/2metric", "a/b/c", None, 3]
)
def test_a_space_id_evaluate_cannot_import_is_refused(tmp_path, repo_id):
    if repo_id is None:  # no id: the default script name
        assert hf_robattr.write_metric_space(tmp_path, None).name == "attribution_robustness.py"
        return
    with pytest.raises(ValueError, match=r"`repo_id` must look like 'ORG/NAME' with NAME a Python identifier"):
        hf_robattr.write_metric_space(tmp_path, repo_id)


def test_the_metric_space_refuses_a_model_folder_or_a_foreign_readme(tmp_path):
    """``push-metric --local_dir outputs/vit`` must not replace the run's model card with the metric card."""
    model = tmp_path / "vit"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "README.md").write_text("# the model card\n")
    with pytest.raises(FileExistsError, match=r"`folder`=.*holds a model \(config\.json\)"):
        hf_robattr.write_metric_space(model, REPO_ID)
    assert (model / "README.md").read_text() == "# the model card\n"
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.md").write_text("# my notes\n")
    with pytest.raises(FileExistsError, match=r"README\.md that is not a metric Space card"):
        hf_robattr.write_metric_space(notes, REPO_ID)
    assert hf_robattr.write_metric_space(notes, REPO_ID, overwrite=True).is_file()
    hf_robattr.write_metric_space(notes, REPO_ID)  # its own card now: rewritten
    with pytest.raises(ValueError, match="`repo_id` must look like"):
        hf_robattr.write_metric_space(tmp_path / "x", "../attribution_robustness")


class _SpaceServer(http.server.SimpleHTTPRequestHandler):
    """Serves ``/spaces/ORG/NAME/resolve/main/FILE`` from one folder, as the Hub serves a Space's files (only the
    ``main`` revision: evaluate first asks for its own version tag, which a Space does not have)."""

    def translate_path(self, path: str) -> str:
        prefix = f"/spaces/{REPO_ID}/resolve/main/"
        name = path.split("?", 1)[0][len(prefix) :] if path.startswith(prefix) else "missing-file"
        return str(Path(self.directory) / name)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub_serving_the_space(tmp_path) -> Iterator[str]:
    folder = tmp_path / "space"
    hf_robattr.write_metric_space(folder, REPO_ID)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_SpaceServer, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


LOAD_FROM_HUB = f"""
import evaluate, torch
metric = evaluate.load({REPO_ID!r})
print("FROM", type(metric).__module__)
from transformers import ViTConfig, ViTForImageClassification
import hf_robattr
torch.manual_seed(0)
model = ViTForImageClassification(ViTConfig(image_size=8, patch_size=4, hidden_size=16, num_hidden_layers=1,
                                            num_attention_heads=2, intermediate_size=32, num_labels=3)).eval()
x = torch.rand(2, 3, 8, 8)
options = dict(methods=["saliency"], epsilon=0.05, num_steps=2, num_samples=2, progress=False)
assert metric.compute(model=model, inputs=x, **options) == hf_robattr.evaluate_attribution_robustness(model, x, **options)
print("SAME NUMBERS")
"""


def test_others_load_the_pushed_space_by_its_id(tmp_path, hub_serving_the_space):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE")}
    env.update(
        HF_ENDPOINT=hub_serving_the_space,
        HF_MODULES_CACHE=str(tmp_path / "modules"),
        HF_HOME=str(tmp_path / "hf_home"),
        HF_UPDATE_DOWNLOAD_COUNTS="0",
    )
    result = subprocess.run(
        [sys.executable, "-c", LOAD_FROM_HUB], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FROM evaluate_modules.metrics.some-org--attribution_robustness." in result.stdout
    assert "SAME NUMBERS" in result.stdout


def test_push_fails_clearly_offline_or_without_a_token(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(MetricSpaceError, match="HF_HUB_OFFLINE is set"):
        hf_robattr.push_metric_space(REPO_ID, token="hf_x")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(MetricSpaceError, match="no Hugging Face token"):
        hf_robattr.push_metric_space(REPO_ID)
    with pytest.raises(MetricSpaceError, match=r"127\.0\.0\.1:9 failed"):
        hf_robattr.push_metric_space(REPO_ID, token="hf_x", endpoint="http://127.0.0.1:9")


@pytest.mark.network
@pytest.mark.skipif(not os.environ.get("HF_TOKEN"), reason="needs HF_TOKEN and the Hugging Face Hub")
def test_real_metric_space_push(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    api = huggingface_hub.HfApi()
    repo_id = f"{api.whoami()['name']}/attribution_robustness_test_{uuid.uuid4().hex[:8]}"
    try:
        assert repo_id in hf_robattr.push_metric_space(repo_id, private=True)
        files = set(api.list_repo_files(repo_id, repo_type="space"))
        assert {f"{repo_id.split('/')[1]}.py", "README.md", "index.html"} <= files
    finally:
        api.delete_repo(repo_id, repo_type="space", missing_ok=True)
