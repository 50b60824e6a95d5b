"""A bare Hub name (``--hub_model_id my-model``), which the Hub itself accepts, works from the argument check to the
push: the card is titled by it and loads the folder, and the push goes to the token user's namespace (asked with
``whoami``, as ``huggingface_hub`` does). Ids the Hub refuses fail up front, naming the argument. The Hub is
unreachable here: its calls are replaced by a recording fake."""

from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub import HfApi, ModelCard
from run_folders import UNREACHABLE

from hf_robattr.hub import publish_run, publish_run_result, push_to_hub, run_summary
from hf_robattr.training import (
    ImageDataArguments,
    RobAttrTrainingArguments,
    VisionModelArguments,
    check_hub_model_id,
    run_pipeline,
)


USER = "alice"


class FakeHub:
    """Records what a push sends; ``whoami`` answers :data:`USER`."""

    def __init__(self, monkeypatch):
        self.repos: list[tuple[str, str]] = []
        self.commits: dict[str, dict] = {}
        self.spaces: dict[str, list[str]] = {}
        self.whoami_calls = 0
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(HfApi, "whoami", self.whoami)
        monkeypatch.setattr(HfApi, "create_repo", self.create_repo)
        monkeypatch.setattr(HfApi, "create_commit", self.create_commit)
        monkeypatch.setattr(HfApi, "upload_folder", self.upload_folder)

    def whoami(self, *args, **kwargs):
        self.whoami_calls += 1
        return {"name": USER, "type": "user"}

    def create_repo(self, repo_id, *, repo_type=None, **kwargs):
        self.repos.append((repo_id, repo_type))
        return f"https://huggingface.co/{repo_id}"

    def create_commit(self, repo_id, operations, **kwargs):
        self.commits[repo_id] = {op.path_in_repo: op.path_or_fileobj for op in operations}
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/0123")

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        self.spaces[repo_id] = sorted(path.name for path in Path(folder_path).iterdir())

    def card(self, repo_id) -> str:
        return self.commits[repo_id]["README.md"].decode("utf-8")


@pytest.mark.parametrize("name", ["my-model", "org/my-model", "my_model.v2"])
def test_the_hub_ids_the_hub_accepts_pass(tmp_path, name):
    assert check_hub_model_id(name, "--hub_model_id") == name
    assert RobAttrTrainingArguments(output_dir=str(tmp_path), hub_model_id=name).hub_model_id == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        pytest.param("org/team/model", "in the form 'repo_name' or 'namespace/repo_name'", id="two-slashes"),
        pytest.param("not a repo", "alphanumeric chars", id="spaces"),
        pytest.param("my--model", "Cannot have -- or ..", id="double-dash"),
        pytest.param("", "alphanumeric chars", id="empty"),
    ],
)
def test_ids_the_hub_refuses_fail_when_the_arguments_are_built(tmp_path, name, why):
    with pytest.raises(ValueError, match=rf"--hub_model_id must be a Hub repo id, 'NAME' .* or 'ORG/NAME'.*{why}"):
        RobAttrTrainingArguments(output_dir=str(tmp_path), hub_model_id=name)


def test_a_bare_name_titles_the_card_which_loads_the_folder(run_dir):
    card = ModelCard.load(publish_run(run_dir, repo_id="my-model"))
    assert card.data.model_name == "my-model" and "\n# my-model\n" in card.text
    assert f'from_pretrained("{run_dir}", trust_remote_code=True)' in card.text
    assert 'from_pretrained("my-model"' not in card.text
    with pytest.raises(ValueError, match="`repo_id` must be a Hub repo id"):
        publish_run(run_dir, repo_id="org/team/model")


def test_push_of_a_bare_name_goes_to_the_token_users_namespace(run_dir, monkeypatch):
    hub = FakeHub(monkeypatch)
    publish_run(run_dir, repo_id="my-model")
    url = push_to_hub(run_dir, "my-model", token="hf_fake", endpoint=UNREACHABLE, space=True)
    full = f"{USER}/my-model"
    assert url == f"https://huggingface.co/{full}/commit/0123" and hub.whoami_calls == 1
    assert hub.repos == [(full, "model"), (f"{full}-demo", "space")]
    assert f'from_pretrained("{full}", trust_remote_code=True)' in hub.card(full)
    assert f"spaces/{full}-demo" in hub.card(full)  # the card links the Space under the same namespace
    assert f'from_pretrained("{full}", trust_remote_code=True)' in (run_dir / "README.md").read_text()
    assert "app.py" in hub.spaces[f"{full}-demo"]


def test_the_cli_names_the_space_in_the_users_namespace(run_dir, monkeypatch, capsys):
    from hf_robattr.cli import main

    hub = FakeHub(monkeypatch)
    publish_run(run_dir, repo_id="my-model")
    assert main(["push", str(run_dir), "my-model", "--space", "--token", "hf_fake"]) == 0
    out = capsys.readouterr().out
    assert f"Demo Space: https://huggingface.co/spaces/{USER}/my-model-demo" in out, out
    assert (f"{USER}/my-model-demo", "space") in hub.repos


def test_push_of_an_org_name_asks_no_namespace(run_dir, monkeypatch):
    hub = FakeHub(monkeypatch)
    publish_run(run_dir, repo_id="org/tiny")
    push_to_hub(run_dir, "org/tiny", token="hf_fake", endpoint=UNREACHABLE)
    assert hub.whoami_calls == 0 and hub.repos == [("org/tiny", "model")]


def test_a_recipe_run_with_a_bare_hub_model_id_trains_writes_its_card_and_pushes(tmp_path, monkeypatch):
    """The whole path of ``recipes/train_vit.py --push_to_hub --hub_model_id my-model``: no error at the card step,
    the push lands in the user's namespace."""
    hub = FakeHub(monkeypatch)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_fake")
    model_args = VisionModelArguments(
        image_size=8, patch_size=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    data_args = ImageDataArguments(dataset_num_examples=80, max_eval_samples=8, split_seed=0)
    args = RobAttrTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=8, robustness_num_examples=0,
        save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, push_to_hub=True,
        hub_model_id="my-model",
    )  # fmt: skip
    run = run_pipeline(model_args, data_args, args)
    assert run.record.hub.repo_id == "my-model"
    card = ModelCard.load(publish_run_result(run, args))
    full = f"{USER}/my-model"
    assert hub.repos == [(full, "model")] and f'from_pretrained("{full}"' in hub.card(full)
    assert card.data.model_name == "my-model" and f'from_pretrained("{full}"' in card.text
    assert "https://huggingface.co/<your user name>/my-model" in run_summary(run, args)
