"""run_pipeline owns the Hub push: the Trainer never pushes, the record says a push was asked for, and taking the
push over twice (or never calling anything) is safe."""

import json
from pathlib import Path

import huggingface_hub
import pytest
from test_run_pipeline import image_run
from transformers import TrainingArguments

from hf_robattr.hub import publish_run_result, run_summary
from hf_robattr.training import RunRecord, run_pipeline, take_over_hub_push


def test_take_over_is_idempotent_and_checks_the_repo(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), push_to_hub=True, hub_model_id="org/tiny", report_to=[])
    assert take_over_hub_push(args) == "org/tiny" and args.push_to_hub is False
    assert take_over_hub_push(args) == "org/tiny"  # a second call remembers the request
    plain = TrainingArguments(output_dir=str(tmp_path), report_to=[])
    assert take_over_hub_push(plain) is None and take_over_hub_push(plain) is None
    with pytest.raises(ValueError, match="hub_model_id"):
        take_over_hub_push(TrainingArguments(output_dir=str(tmp_path), push_to_hub=True, report_to=[]))


def test_a_push_request_is_recorded_and_the_trainer_never_pushes(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # a Trainer push would fail at init
    model_args, data_args, args = image_run(
        tmp_path, push_to_hub=True, hub_model_id="org/tiny", overwrite_output_dir=True
    )
    run = run_pipeline(model_args, data_args, args)
    assert run.push_requested and run.record.hub.repo_id == "org/tiny" and not run.trainer.args.push_to_hub
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    assert on_disk["hub"] == {"push_requested": True, "repo_id": "org/tiny"}
    assert RunRecord.read(tmp_path / "out").push_requested

    pushed = []
    monkeypatch.setattr("hf_robattr.hub.publish.push_to_hub", lambda folder, repo, **kwargs: pushed.append(repo))
    publish_run_result(run, args)
    publish_run_result(run, args)  # twice: the same card, the same push
    assert pushed == ["org/tiny", "org/tiny"] and (tmp_path / "out" / "README.md").is_file()
    assert "org/tiny" in run_summary(run, args)

    again = run_pipeline(model_args, data_args, args)  # the same arguments again: the request is remembered
    assert again.push_requested and not again.trainer.args.push_to_hub


def test_no_push_asked_writes_no_hub_section_and_publishes_locally(tmp_path, monkeypatch):
    model_args, data_args, args = image_run(tmp_path, hub_model_id="org/tiny")
    run = run_pipeline(model_args, data_args, args)
    assert not run.push_requested and "hub" not in run.results
    # the keys main wrote before the typed record, in its order (a BERT run of main without diagnostics)
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    main = json.loads((Path(__file__).with_name("fixtures") / "results_bert_c4f9072.json").read_text())
    assert list(written) == list(main)
    added = {"dataset": ["split_seed", "dataset_num_examples"]}  # recorded since (the data's seed and size)
    for section in ("model", "training", "dataset", "eval", "robustness_config"):
        kept = [key for key in written[section] if key not in added.get(section, [])]
        assert kept == list(main[section]), section
    assert written["dataset"]["split_seed"] == 0 and written["dataset"]["dataset_num_examples"] == 80
    monkeypatch.setattr("hf_robattr.hub.publish.push_to_hub", lambda *a, **k: pytest.fail("pushed unasked"))
    assert publish_run_result(run, args).name == "README.md"
