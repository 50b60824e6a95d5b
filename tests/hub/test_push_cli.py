"""push_to_hub: clear errors that leave the folder complete, and a real upload with HF_TOKEN (the ``hf-robattr push``
command's tests are in tests/test_cli.py)."""

import hashlib
import os
import uuid
from pathlib import Path

import huggingface_hub
import pytest
from run_folders import UNREACHABLE

import hf_robattr
from hf_robattr.hub import HubPushError, push_to_hub, save_model_card


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_unreachable_hub_gives_a_clear_error_and_keeps_the_folder(run_dir, online):
    save_model_card(run_dir)
    before = folder_digest(run_dir)
    with pytest.raises(HubPushError, match=r"org/tiny.*127\.0\.0\.1:9.*is complete; retry with `hf-robattr push"):
        push_to_hub(run_dir, "org/tiny", token="hf_not_a_token", endpoint=UNREACHABLE)
    assert folder_digest(run_dir) == before


def test_no_token(run_dir, online, monkeypatch):
    save_model_card(run_dir)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(HubPushError, match="no Hugging Face token"):
        push_to_hub(run_dir, "org/tiny", endpoint=UNREACHABLE)


def test_offline_mode(run_dir, monkeypatch):
    save_model_card(run_dir)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubPushError, match="HF_HUB_OFFLINE"):
        push_to_hub(run_dir, "org/tiny", token="hf_x")


def test_incomplete_folder_and_bad_repo_id(run_dir):
    with pytest.raises(FileNotFoundError, match=r"missing \['README.md'\]"):
        push_to_hub(run_dir, "org/tiny", token="hf_x")
    with pytest.raises(ValueError, match="ORG/NAME"):
        push_to_hub(run_dir, "not a repo", token="hf_x")


@pytest.mark.network
@pytest.mark.skipif(not os.environ.get("HF_TOKEN"), reason="needs HF_TOKEN and the Hugging Face Hub")
def test_real_upload(run_dir, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    api = huggingface_hub.HfApi()
    repo_id = f"{api.whoami()['name']}/hf-robattr-test-{uuid.uuid4().hex[:8]}"
    save_model_card(run_dir, model_id=repo_id)
    try:
        url = hf_robattr.push_to_hub(run_dir, repo_id, private=True)
        assert repo_id in url
        files = set(api.list_repo_files(repo_id))
        assert {"README.md", "config.json", "model.safetensors", "results.json", "training_curves.png"} <= files
        assert any(name.startswith("modeling_") for name in files)
    finally:
        api.delete_repo(repo_id, missing_ok=True)


def test_a_failed_publish_leaves_the_folder_complete(run_dir, online, monkeypatch):
    import torch
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(run_dir)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", UNREACHABLE)
    with pytest.raises(HubPushError, match="is complete; retry"):
        hf_robattr.publish_run(
            run_dir, model=model, inputs=torch.rand(3, 1, 8, 8), repo_id="org/tiny", push=True, token="hf_x"
        )
    # the failed push left a complete, loadable folder with its card and pictures
    hf_robattr.check_output_dir(run_dir)
    assert (run_dir / "attribution_maps.png").is_file()
    assert "org/tiny" in (run_dir / "README.md").read_text()


def test_push_skips_pickles_and_refuses_a_file_holding_the_token(run_dir, online):
    from hf_robattr.hub.push import files_to_upload

    save_model_card(run_dir)
    for name in ("training_args.bin", "optimizer.pt", "rng_state.pth", "extra.pkl"):
        (run_dir / name).write_bytes(b"pickle")
    uploaded = {path.name for path in files_to_upload(run_dir)}
    assert {"README.md", "config.json", "model.safetensors"} <= uploaded
    assert not uploaded & {"training_args.bin", "optimizer.pt", "rng_state.pth", "extra.pkl"}
    # A token in a pickle that is not uploaded does not block; in an uploaded file it does, before any network call.
    (run_dir / "training_args.bin").write_bytes(b"...hf_leaked_token_123...")
    with pytest.raises(HubPushError, match="Hub token") as error:
        (run_dir / "notes.txt").write_text("token: hf_leaked_token_123")
        push_to_hub(run_dir, "org/tiny", token="hf_leaked_token_123", endpoint=UNREACHABLE)
    assert "notes.txt" in str(error.value) and "training_args.bin" not in str(error.value)
