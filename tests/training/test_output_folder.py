"""Nothing lost on a rerun into a finished folder: a --resume_from_checkpoint that names no checkpoint is refused
before anything changes, the old results.json stays until training has begun (a checkpoint that fails to load leaves
it in place), and it is set aside, never deleted, until the new one is written."""

import json
import shutil

import pytest
from test_run_pipeline import image_run

from hf_robattr.training import PREVIOUS_RESULTS_FILE, check_resume_checkpoint, run_pipeline


OLD_RESULTS = {"old": "a finished run"}


def finished_folder(tmp_path):
    """``tmp_path/out`` holding only a finished run's results.json."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(OLD_RESULTS))
    return folder


def listing(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_a_checkpoint_that_is_not_there_is_refused_and_results_json_kept(tmp_path):
    folder = finished_folder(tmp_path)
    missing = str(folder / "checkpoint-99")
    with pytest.raises(ValueError, match=r"--resume_from_checkpoint '.*checkpoint-99'.*found no such folder") as error:
        run_pipeline(*image_run(tmp_path, resume_from_checkpoint=missing))
    assert "holds no checkpoint-* folder" in str(error.value) and "--keep_checkpoints" in str(error.value)
    assert json.loads((folder / "results.json").read_text()) == OLD_RESULTS
    assert listing(folder) == ["results.json"]


@pytest.mark.parametrize(
    ("make", "found"),
    [
        pytest.param(lambda path: path.mkdir(), "a folder without trainer_state.json", id="no-trainer-state"),
        pytest.param(lambda path: path.write_text("x"), "a file, not a folder", id="a-file"),
    ],
)
def test_a_folder_that_is_no_checkpoint_is_refused(tmp_path, make, found):
    folder = finished_folder(tmp_path)
    make(folder / "checkpoint-3")
    args = image_run(tmp_path, resume_from_checkpoint=str(folder / "checkpoint-3"))[2]
    with pytest.raises(ValueError, match=f"--resume_from_checkpoint .* found {found}"):
        check_resume_checkpoint(args)
    check_resume_checkpoint(image_run(tmp_path)[2])  # no resume: nothing to check


def test_resuming_a_finished_run_whose_checkpoints_were_removed_is_refused(tmp_path):
    """The finished run removed its checkpoints at the end; resuming it names that, and its results.json stays."""
    every_step = {"save_strategy": "steps", "save_steps": 1}
    run_pipeline(*image_run(tmp_path, **every_step))
    folder = tmp_path / "out"
    before = (folder / "results.json").read_bytes()
    assert not list(folder.glob("checkpoint-*"))
    resume = image_run(tmp_path, **every_step, resume_from_checkpoint=str(folder / "checkpoint-2"))
    with pytest.raises(ValueError, match=r"--resume_from_checkpoint.*no such folder.*only with --keep_checkpoints"):
        run_pipeline(*resume)
    assert (folder / "results.json").read_bytes() == before


def test_a_checkpoint_that_fails_to_load_keeps_results_json_and_a_good_one_replaces_it(tmp_path):
    """A checkpoint folder that passes the check but holds no weights fails inside Trainer.train, before training
    begins: the old results.json is still in place. Resuming from a complete checkpoint writes the new results.json
    and leaves no set-aside copy."""
    kept = {"save_strategy": "steps", "save_steps": 1, "keep_checkpoints": True}
    run_pipeline(*image_run(tmp_path, **kept))
    folder = tmp_path / "out"
    before = (folder / "results.json").read_bytes()
    broken = folder / "broken-checkpoint"  # inside: a checkpoint from elsewhere would not continue this run
    shutil.copytree(folder / "checkpoint-1", broken)
    for weights in broken.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(ValueError, match="Can't find a valid checkpoint"):
        run_pipeline(*image_run(tmp_path, **kept, resume_from_checkpoint=str(broken)))
    assert (folder / "results.json").read_bytes() == before
    assert not (folder / PREVIOUS_RESULTS_FILE).exists()

    resumed = run_pipeline(*image_run(tmp_path, **kept, resume_from_checkpoint=str(folder / "checkpoint-1")))
    assert resumed.record.training.global_step == 2
    assert json.loads((folder / "results.json").read_text()) == resumed.results
    assert not (folder / PREVIOUS_RESULTS_FILE).exists()


@pytest.mark.parametrize("value", ["last", "True"])
def test_last_names_the_last_checkpoint_in_the_output_folder(tmp_path, value):
    """``--resume_from_checkpoint last`` (or ``True``, as ``Trainer.train`` reads a bool) resolves to the newest
    checkpoint-N, the one ``get_last_checkpoint`` picks, before anything runs; with none there it is refused."""
    folder = tmp_path / "out"
    args = image_run(tmp_path, resume_from_checkpoint=value)[2]
    with pytest.raises(ValueError, match=f"--resume_from_checkpoint {value} resumes the last.*'.*out' does not exist"):
        check_resume_checkpoint(args)
    finished_folder(tmp_path)
    with pytest.raises(ValueError, match=r"and there is none: --output_dir '.*out' holds no checkpoint-\* folder"):
        check_resume_checkpoint(args)
    for step in (2, 10, 9):
        (folder / f"checkpoint-{step}").mkdir()
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    check_resume_checkpoint(args)
    assert args.resume_from_checkpoint == str(folder / "checkpoint-10")


def test_a_rerun_that_fails_after_training_began_sets_the_old_results_aside(tmp_path, monkeypatch):
    """Once training has begun the old results.json no longer claims the folder, but it is not lost."""

    def scoring_fails(*args, **kwargs):
        raise RuntimeError("scoring failed")

    monkeypatch.setattr("hf_robattr.training.run.score_test_robustness", scoring_fails)
    folder = finished_folder(tmp_path)
    with pytest.raises(RuntimeError, match="scoring failed"):
        run_pipeline(*image_run(tmp_path, overwrite_output_dir=True))
    assert not (folder / "results.json").exists()
    assert json.loads((folder / PREVIOUS_RESULTS_FILE).read_text()) == OLD_RESULTS
    assert (folder / "model.safetensors").is_file()  # the trained model was saved before the scoring


def test_save_model_false_leaves_the_folder_alone(tmp_path):
    folder = finished_folder(tmp_path)
    run_pipeline(*image_run(tmp_path, overwrite_output_dir=True), save_model=False)
    assert json.loads((folder / "results.json").read_text()) == OLD_RESULTS
    assert not (folder / PREVIOUS_RESULTS_FILE).exists()
