"""Nothing is lost: a finished run folder is refused unless asked, the model is saved before any evaluation that
can fail, and an interrupted rerun leaves no old results.json claiming success."""

import json
import types
import warnings

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
        pytest.param(False, None, "holds a finished run", id="neither"),
        pytest.param(True, None, None, id="overwrite"),
        pytest.param(False, "run/checkpoint-2", None, id="resume-inside"),
        pytest.param(False, "last", None, id="resume-last"),
        pytest.param(False, "other/checkpoint-2", "is outside --output_dir", id="resume-from-another-run"),
    ],
)
def test_check_output_dir(tmp_path, overwrite, resume, refused):
    folder = finished_run(tmp_path / "run")
    resume = str(tmp_path / resume) if resume and "/" in resume else resume
    args = types.SimpleNamespace(output_dir=str(folder), overwrite_output_dir=overwrite, resume_from_checkpoint=resume)
    if refused:
        with pytest.raises(ValueError, match=f"{refused}.*--overwrite_output_dir"):
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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            "checkpoint-2/trainer_state.json",
            r"holds an unfinished run .*checkpoint-2.*--resume_from_checkpoint last",
            id="interrupted",
        ),
        pytest.param("README.md", r"is not empty \(README.md\) and holds no run", id="user-files"),
    ],
)
def test_an_interrupted_run_or_other_files_are_not_overwritten_unless_asked(tmp_path, content, message):
    """Rerunning an interrupted run's command without --resume_from_checkpoint would train from scratch and remove
    its checkpoints at the end; a folder of the user's own files would lose its README.md to the card."""
    folder = tmp_path / "run"
    (folder / content).parent.mkdir(parents=True)
    (folder / content).write_text("{}")
    args = types.SimpleNamespace(output_dir=str(folder), overwrite_output_dir=False, resume_from_checkpoint=None)
    with pytest.raises(ValueError, match=message):
        refuse_finished_run(args)
    refuse_finished_run(types.SimpleNamespace(**{**vars(args), "overwrite_output_dir": True}))
    (folder / content).unlink()
    if content.startswith("checkpoint"):
        (folder / content).parent.rmdir()
    refuse_finished_run(args)  # an empty folder is taken


def test_a_finished_run_keeps_no_trainer_checkpoints_unless_asked(recipes, tmp_path):
    every_two = ["--save_strategy", "steps", "--save_steps", "2"]
    recipes["train_vit"].main(["--output_dir", str(tmp_path / "run"), *QUICK, *every_two])
    assert not list((tmp_path / "run").glob("checkpoint-*"))  # optimizer/RNG states gone, the model stays
    assert (tmp_path / "run" / "model.safetensors").is_file()
    recipes["train_vit"].main(["--output_dir", str(tmp_path / "kept"), *QUICK, *every_two, "--keep_checkpoints"])
    assert sorted(p.name for p in (tmp_path / "kept").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


def test_the_recipe_ends_with_where_things_are_the_scores_and_what_next_and_no_pin_memory_warning(
    recipes, tmp_path, capsys
):
    folder = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recipes["train_vit"].main(["--output_dir", str(folder), *QUICK])
    assert not [w for w in caught if "pin_memory" in str(w.message)]  # a CPU run cannot act on it
    summary = capsys.readouterr().out.split(f"Done. Everything is in {folder}/:")[-1]
    for line in (
        f"results  {folder / 'results.json'}",
        f"card     {folder / 'README.md'}",
        "Test accuracy ",
        "saliency: top-k intersection ",
        "(higher is more robust)",
        f"hf-robattr push {folder} ORG/NAME",
        f"hf-robattr demo {folder}",
        f"python recipes/convert_to_kernel.py --model_name_or_path {folder} --output_dir {folder}-kernel",
    ):
        assert line in summary, line


def test_a_diverged_run_is_recorded_not_scored(recipes, tmp_path, capsys):
    """A run stopped by --divergence_loss has nothing to explain (its maps are NaN or zero): it is saved and recorded
    as diverged, and the recipe ends with its summary instead of failing in the scorer."""
    folder = tmp_path / "run"
    flags = ["--learning_rate", "1e30", "--logging_steps", "1", "--divergence_loss", "5", "--diagnostics_at_end"]
    recipes["train_vit"].main(["--output_dir", str(folder), *QUICK, *flags])
    results = json.loads((folder / "results.json").read_text())
    assert results["training"]["diverged"] is True and results["training"]["diverged_at_step"] >= 1
    assert not results.get("robustness") and not results.get("diagnostics")
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()
    assert not list(folder.glob("*attribution*.png"))  # no picture of NaN maps
    out = capsys.readouterr().out
    assert f"Training diverged at step {results['training']['diverged_at_step']} (--divergence_loss 5.0)" in out


@pytest.mark.parametrize(
    ("flags", "accelerator", "pinned"),
    [
        pytest.param([], False, False, id="cpu-only-machine"),
        pytest.param([], True, True, id="accelerator"),
        pytest.param(["--use_cpu"], True, False, id="use-cpu"),
        pytest.param(["--dataloader_pin_memory", "true"], False, True, id="asked-for"),
    ],
)
def test_pin_memory_follows_the_device_unless_asked(monkeypatch, tmp_path, flags, accelerator, pinned):
    from transformers import HfArgumentParser

    from hf_robattr.training import RobAttrTrainingArguments
    from hf_robattr.training import training_arguments as module

    monkeypatch.setattr(module, "has_accelerator", lambda: accelerator)
    (args,) = HfArgumentParser(RobAttrTrainingArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), *flags]
    )
    assert args.dataloader_pin_memory is pinned
