"""Nothing is lost: a finished run folder is refused unless asked, the model is saved before any evaluation that
can fail, and an interrupted rerun leaves no old results.json claiming success."""

import json
import types

import pytest
from recipe_helpers import QUICK
from transformers import AutoModelForImageClassification

from hf_robattr.training import refuse_finished_run


OLD_RESULTS = {"old": "a finished run"}


def finished_run(folder):
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(OLD_RESULTS))
    return folder


def test_a_finished_run_is_refused(recipes, tmp_path):
    folder = finished_run(tmp_path / "run")
    with pytest.raises(ValueError, match=r"holds a finished run.*--overwrite_output_dir.*--resume_from_checkpoint"):
        recipes["train_vit"].main(["--output_dir", str(folder), *QUICK])
    assert json.loads((folder / "results.json").read_text()) == OLD_RESULTS
    assert sorted(path.name for path in folder.iterdir()) == ["results.json"]


@pytest.mark.parametrize(
    ("overwrite", "resume", "refused"),
    [
        pytest.param(False, None, True, id="neither"),
        pytest.param(True, None, False, id="overwrite"),
        pytest.param(False, "run/checkpoint-2", False, id="resume"),
    ],
)
def test_check_output_dir(tmp_path, overwrite, resume, refused):
    folder = finished_run(tmp_path / "run")
    args = types.SimpleNamespace(output_dir=str(folder), overwrite_output_dir=overwrite, resume_from_checkpoint=resume)
    if refused:
        with pytest.raises(ValueError, match="--overwrite_output_dir"):
            refuse_finished_run(args)
    else:
        refuse_finished_run(args)
    refuse_finished_run(types.SimpleNamespace(output_dir=str(tmp_path / "new"), overwrite_output_dir=False,
                                           resume_from_checkpoint=None))  # fmt: skip


def test_overwrite_saves_the_model_before_a_failing_evaluation(recipes, tmp_path, monkeypatch):
    """With --overwrite_output_dir the old results.json goes at the start; when the robustness scoring then fails,
    the trained model is already on disk and no results.json claims success."""

    def scoring_fails(*args, **kwargs):
        raise RuntimeError("scoring failed")

    monkeypatch.setattr("hf_robattr.training.run.score_test_robustness", scoring_fails)
    folder = finished_run(tmp_path / "run")
    with pytest.raises(RuntimeError, match="scoring failed"):
        recipes["train_vit"].main(["--output_dir", str(folder), *QUICK, "--overwrite_output_dir"])
    assert not (folder / "results.json").exists()
    model = AutoModelForImageClassification.from_pretrained(folder)
    assert model.config.num_labels == 4 and (folder / "preprocessor_config.json").is_file()
