"""push_to_hub(space=True): one model commit (the card linking the Space, no pickles) and a Gradio Space repo with
app.py + requirements.txt + README.md; nothing local changes when the push fails. A recording fake stands in for
HfApi (the Hub is unreachable here); the generated Space is run for real in tests/demo/test_space_app.py."""

from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import SpaceCard

import hf_robattr.hub.push as push_module
from hf_robattr.cli import main
from hf_robattr.hub import HubPushError, push_to_hub, save_model_card
from hf_robattr.hub.space import card_with_space_link, space_url, write_space


class RecordingApi:
    """Records the calls push_to_hub makes, and what each upload would send."""

    calls: list = []
    fail_on: str | None = None

    def __init__(self, endpoint=None, token=None):
        self.token = token

    def _record(self, name, **kwargs):
        if name == type(self).fail_on:
            raise ConnectionError("the Hub said no")
        type(self).calls.append((name, kwargs))

    def create_repo(self, repo_id, **kwargs):
        self._record("create_repo", repo_id=repo_id, **kwargs)

    def create_branch(self, repo_id, **kwargs):
        self._record("create_branch", repo_id=repo_id, **kwargs)

    def create_commit(self, repo_id, operations, **kwargs):
        sent = {}
        for op in operations:
            source = op.path_or_fileobj
            sent[op.path_in_repo] = source if isinstance(source, bytes) else Path(source).read_bytes()
        self._record("create_commit", repo_id=repo_id, files=sent, **kwargs)
        return type("Commit", (), {"commit_url": f"https://hub.test/{repo_id}/commit/1"})()

    def upload_folder(self, repo_id, folder_path, **kwargs):
        files = {p.name: p.read_text() for p in Path(folder_path).iterdir() if p.is_file()}
        self._record("upload_folder", repo_id=repo_id, files=files, **kwargs)


@pytest.fixture
def fake_hub(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(push_module, "HfApi", RecordingApi)
    RecordingApi.calls, RecordingApi.fail_on = [], None
    return RecordingApi


def test_push_with_space(run_dir, fake_hub):
    save_model_card(run_dir, model_id="org/tiny")
    (run_dir / "optimizer.pt").write_bytes(b"pickle")
    url = push_to_hub(run_dir, "org/tiny", token="hf_x", space=True, space_requirement="hf_robattr[demo]==0.1.0")
    assert url == "https://hub.test/org/tiny/commit/1"
    names = [name for name, _ in fake_hub.calls]
    assert names == ["create_repo", "create_commit", "create_repo", "upload_folder"]
    (_, model_repo), (_, commit), (_, space_repo), (_, space) = fake_hub.calls
    assert model_repo == {"repo_id": "org/tiny", "private": None, "exist_ok": True, "repo_type": "model"}
    assert {"README.md", "config.json", "model.safetensors", "results.json"} <= set(commit["files"])
    assert "optimizer.pt" not in commit["files"]
    pushed_card = commit["files"]["README.md"].decode()
    assert space_url("org/tiny-demo") in pushed_card and pushed_card.index("## Demo") < pushed_card.index("## Usage")
    assert space_repo["repo_id"] == "org/tiny-demo"
    assert space_repo["repo_type"] == "space" and space_repo["space_sdk"] == "gradio"
    assert space["repo_id"] == "org/tiny-demo" and space["repo_type"] == "space"
    assert set(space["files"]) == {"app.py", "requirements.txt", "README.md"}
    assert "MODEL = os.environ.get(\"HF_ROBATTR_MODEL\") or 'org/tiny'" in space["files"]["app.py"]
    assert space["files"]["requirements.txt"] == "hf_robattr[demo]==0.1.0\n"
    # the local card now matches the pushed one
    assert (run_dir / "README.md").read_text() == pushed_card


def test_failed_space_push_leaves_the_folder_as_it_was(run_dir, fake_hub):
    save_model_card(run_dir, model_id="org/tiny")
    before = (run_dir / "README.md").read_text()
    fake_hub.fail_on = "upload_folder"
    with pytest.raises(HubPushError, match=r"the Hub said no.*retry with"):
        push_to_hub(run_dir, "org/tiny", token="hf_x", space=True, space_id="org/explorer")
    assert (run_dir / "README.md").read_text() == before


def test_space_arguments(run_dir, fake_hub):
    save_model_card(run_dir)
    with pytest.raises(ValueError, match="space_id"):
        push_to_hub(run_dir, "org/tiny", token="hf_x", space=True, space_id="no-slash")
    with pytest.raises(ValueError, match="space=True"):
        push_to_hub(run_dir, "org/tiny", token="hf_x", space_id="org/demo")
    assert fake_hub.calls == []


def test_cli_push_space(run_dir, fake_hub, capsys):
    save_model_card(run_dir)
    argv = ["push", str(run_dir), "org/tiny", "--token", "hf_x", "--space", "--space_id", "org/explorer"]
    assert main([*argv, "--space_requirement", "git+https://example.org/hf_robattr.git"]) == 0
    out = capsys.readouterr().out
    assert "Demo Space: https://huggingface.co/spaces/org/explorer" in out
    [space] = [call[1] for call in fake_hub.calls if call[0] == "upload_folder"]
    assert space["repo_id"] == "org/explorer"
    assert space["files"]["requirements.txt"] == "git+https://example.org/hf_robattr.git\n"


def test_space_folder(tmp_path):
    folder = write_space(tmp_path / "space", "org/tiny-kernel-vit", requirement="hf_robattr[demo]")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "app.py", "requirements.txt"]
    card = SpaceCard.load(folder / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    assert card.data.models == ["org/tiny-kernel-vit"]
    compile((folder / "app.py").read_text(), "app.py", "exec")
    with pytest.raises(ValueError, match="model_id"):
        write_space(tmp_path / "other", "")


def test_space_link_is_added_once():
    text = "# Card\n\n## Results\n\nx\n\n## Usage\n\ncode\n"
    linked = card_with_space_link(text, "org/demo")
    assert linked.count(space_url("org/demo")) == 1 and linked.index("## Demo") < linked.index("## Usage")
    assert card_with_space_link(linked, "org/demo") == linked
    appended = card_with_space_link("# Card\n", "org/demo")
    assert appended.startswith("# Card\n\n## Demo\n\n") and space_url("org/demo") in appended


def test_card_links_the_space(run_dir):
    text = (save_model_card(run_dir, model_id="org/tiny", space_id="org/tiny-demo")).read_text()
    assert card_with_space_link(text, "org/tiny-demo") == text  # already linked, in the same words
    with pytest.raises(ValueError, match="space_id"):
        save_model_card(run_dir, space_id="bad")


def test_a_card_written_before_the_repo_id_was_known_is_pushed_loading_the_repo(run_dir, fake_hub):
    save_model_card(run_dir)  # no model_id: the card loads the run folder
    assert f'from_pretrained("{run_dir}"' in (run_dir / "README.md").read_text()
    push_to_hub(run_dir, "org/tiny", token="hf_x")
    pushed = dict(fake_hub.calls)["create_commit"]["files"]["README.md"].decode()
    assert 'from_pretrained("org/tiny", trust_remote_code=True)' in pushed and str(run_dir) not in pushed
    assert (run_dir / "README.md").read_text() == pushed


@pytest.mark.parametrize("space_id", ["org/a..b", "../vit", "org/name-", "org/a--b", "org/x.git"])
def test_an_invalid_space_id_is_refused_before_anything_is_pushed(run_dir, fake_hub, space_id):
    save_model_card(run_dir)
    with pytest.raises(ValueError, match=r"`space_id` must look like 'ORG/NAME' \(a Hub Space id\), got"):
        push_to_hub(run_dir, "org/tiny", token="hf_x", space=True, space_id=space_id)
    assert fake_hub.calls == []


@pytest.mark.parametrize("model_id", ["../vit", "org/name-", "org/a..b"])
def test_the_card_refuses_a_model_id_the_hub_refuses(run_dir, model_id):
    with pytest.raises(ValueError, match=r"`model_id` must look like 'ORG/NAME'"):
        save_model_card(run_dir, model_id=model_id)


def test_write_space_refuses_a_model_folder_unless_asked(run_dir):
    card = save_model_card(run_dir).read_text()
    with pytest.raises(FileExistsError, match=r"`folder`=.*holds a model \(config\.json, model\.safetensors\)"):
        write_space(run_dir, "org/tiny", requirement="x")
    assert (run_dir / "README.md").read_text() == card and not (run_dir / "app.py").exists()
    write_space(run_dir, "org/tiny", requirement="x", overwrite=True)
    assert SpaceCard.load(run_dir / "README.md").data.sdk == "gradio"


def test_write_space_refuses_a_foreign_readme_but_rewrites_its_own(tmp_path):
    (tmp_path / "README.md").write_text("# my notes\n")
    with pytest.raises(FileExistsError, match=r"README\.md that is not a gradio Space card"):
        write_space(tmp_path, "org/tiny", requirement="x")
    assert (tmp_path / "README.md").read_text() == "# my notes\n"
    space = write_space(tmp_path / "space", "org/tiny", requirement="x")
    write_space(space, "org/other", requirement="x")  # its own Space card: rewritten
    assert SpaceCard.load(space / "README.md").data.models == ["org/other"]


def test_pushing_with_another_space_replaces_the_demo_section(run_dir, fake_hub):
    save_model_card(run_dir, model_id="org/tiny")
    push_to_hub(run_dir, "org/tiny", token="hf_x", space=True, space_id="org/first")
    push_to_hub(run_dir, "org/tiny", token="hf_x", space=True, space_id="org/second")
    text = (run_dir / "README.md").read_text()
    assert text.count("## Demo") == 1 and space_url("org/first") not in text and space_url("org/second") in text
    assert text.index("## Demo") < text.index("## Usage")
    at_end = card_with_space_link(card_with_space_link("# Card\n", "org/a"), "org/b")
    assert at_end.count("## Demo") == 1 and space_url("org/b") in at_end and space_url("org/a") not in at_end


def _run_app(app: str, monkeypatch, env: str | None) -> str:
    """The model the generated ``app.py`` builds its explorer on, with ``HF_ROBATTR_MODEL`` set to ``env``."""
    import sys
    import types

    built = []
    fake_demo = types.ModuleType("hf_robattr.demo")
    fake_demo.build_app = built.append
    monkeypatch.setitem(sys.modules, "hf_robattr.demo", fake_demo)
    if env is None:
        monkeypatch.delenv("HF_ROBATTR_MODEL", raising=False)
    else:
        monkeypatch.setenv("HF_ROBATTR_MODEL", env)
    exec(compile(app, "app.py", "exec"), {"__name__": "space_app"})
    return built[0]


def test_space_app_ignores_an_empty_model_variable(tmp_path, monkeypatch):
    app = (write_space(tmp_path / "space", "org/tiny", requirement="x") / "app.py").read_text()
    assert _run_app(app, monkeypatch, "") == "org/tiny"
    assert _run_app(app, monkeypatch, None) == "org/tiny"
    assert _run_app(app, monkeypatch, "other/model") == "other/model"


def test_space_for_a_local_folder_quotes_it_and_links_nothing(tmp_path, monkeypatch):
    model = tmp_path / 'C:\\Users\\new "vit"'
    model.mkdir()
    space = write_space(tmp_path / "space", str(model), requirement="x")
    assert _run_app((space / "app.py").read_text(), monkeypatch, None) == str(model)
    card = SpaceCard.load(space / "README.md")
    assert card.data.models is None and "huggingface.co/" not in card.text


@pytest.mark.parametrize("model_id", ["../vit", "org/name-", "org/a..b", "no-such-folder"])
def test_space_refuses_a_model_that_is_neither_a_hub_id_nor_a_folder(tmp_path, model_id):
    with pytest.raises(ValueError, match=r"`model_id` must be a Hub model id 'ORG/NAME'.*or an existing local"):
        write_space(tmp_path / "space", model_id, requirement="x")
    assert not (tmp_path / "space").exists()
