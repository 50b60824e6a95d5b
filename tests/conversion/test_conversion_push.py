"""``convert_to_kernel.py --push_to_hub --hub_model_id NAME``: a bare name (the Hub puts it in the token user's
namespace) passes the argument check and is pushed after the conversion; ids the Hub refuses fail before any
training. The Hub is unreachable here: its calls are replaced by a recording fake."""

from types import SimpleNamespace

import huggingface_hub
import pytest
from conversion_helpers import save_tiny_checkpoint
from huggingface_hub import HfApi
from script_modules import load_script
from test_conversion_recipe import QUICK_FLAGS
from transformers import ViTForImageClassification

from hf_robattr.conversion.arguments import ConversionOutputArguments


@pytest.fixture(scope="module")
def recipe():
    return load_script("recipes/convert_to_kernel.py", "recipe_convert_to_kernel_push")


def test_a_bare_hub_model_id_is_pushed_to_the_users_namespace(recipe, tmp_path, monkeypatch, capsys):
    pushed = {}
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_fake")
    monkeypatch.setattr(HfApi, "whoami", lambda api, *args, **kwargs: {"name": "alice"})
    monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **kwargs: pushed.setdefault("repo", repo_id))

    def create_commit(api, repo_id, operations, **kwargs):
        pushed["files"] = {op.path_in_repo: op.path_or_fileobj for op in operations}
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/0123")

    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    checkpoint = save_tiny_checkpoint(ViTForImageClassification, tmp_path / "vit", num_labels=4)  # synthetic_images
    out = tmp_path / "out"
    recipe.main(["--model_name_or_path", str(checkpoint), "--output_dir", str(out), *QUICK_FLAGS,
                 "--push_to_hub", "true", "--hub_model_id", "vit-kernel"])  # fmt: skip
    assert pushed["repo"] == "alice/vit-kernel" and "model.safetensors" in pushed["files"]
    card = pushed["files"]["README.md"].decode("utf-8")
    assert 'from_pretrained("alice/vit-kernel", trust_remote_code=True)' in card and "# vit-kernel" in card
    assert 'from_pretrained("alice/vit-kernel"' in (out / "README.md").read_text()
    assert "https://huggingface.co/<your user name>/vit-kernel" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["vit-kernel", "org/vit-kernel"])
def test_output_arguments_take_what_the_hub_takes(tmp_path, name):
    args = ConversionOutputArguments(output_dir=str(tmp_path), push_to_hub=True, hub_model_id=name)
    assert args.hub_model_id == name


@pytest.mark.parametrize("name", ["org/team/vit", "vit kernel", "vit--kernel"])
def test_output_arguments_refuse_what_the_hub_refuses(tmp_path, name):
    with pytest.raises(ValueError, match=r"--hub_model_id must be a Hub repo id, 'NAME' .* or 'ORG/NAME'"):
        ConversionOutputArguments(output_dir=str(tmp_path), hub_model_id=name)
