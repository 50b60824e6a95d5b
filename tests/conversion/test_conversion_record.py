"""The typed conversion record: results.json files written by main before the record existed load and round-trip
exactly, and render the same card; older files (keys missing, keys unknown) load; a malformed file is refused naming
the section."""

import json
from pathlib import Path

import pytest
from record_checks import check_round_trip

from hf_robattr.conversion import ConversionConfig, ConversionRecord, build_conversion_card
from hf_robattr.conversion.record import ConversionDataRecord, DataSplitsRecord, StageRecord


FIXTURES = Path(__file__).with_name("fixtures")
# Written by `recipes/convert_to_kernel.py` at main a224fa2 (--batch_size 8 --transfer_steps 6 --recovery_steps 4
# --logging_steps 2 --max_train_samples 48 --max_eval_samples 12): the ViT teacher of a 4-step `train_vit.py` run
# (synthetic_images, a validation split, the transfer skipped by its rule), and a tiny BERT on the offline prose
# (`--prose_sources pydoc_topics sklearn_descriptions --transfer_check_steps 2 --recovery_check_steps 2`: fingerprint,
# sources, both stop rules). card_bert_conversion_a224fa2.md is the card written beside the BERT one.
WRITTEN_BY_MAIN = sorted(FIXTURES.glob("results_*_conversion_a224fa2.json"))


@pytest.mark.parametrize("path", WRITTEN_BY_MAIN, ids=lambda path: path.stem)
def test_a_file_written_by_main_round_trips_exactly(path, tmp_path):
    record = check_round_trip(ConversionRecord, path, tmp_path)
    assert record.config == ConversionConfig.from_dict(json.loads(path.read_text())["conversion"])


def test_the_sections_are_typed():
    vit, bert = (
        ConversionRecord.from_json(json.loads((FIXTURES / f"results_{name}_conversion_a224fa2.json").read_text()))
        for name in ("vit", "bert")
    )
    assert vit.student.attention_type == "kernel" and vit.student.kernel_feature_map == "hedgehog"
    assert (
        vit.data.dataset == "synthetic_images"
        and vit.data.splits.validation_dataset == "synthetic_images [validation]"
    )
    assert vit.data.splits.fingerprint is None and vit.stages["recovery"].stop_rule["decision"].startswith("skipped")
    assert bert.data.splits.fingerprint and bert.data.splits.sources and bert.data.num_eval_examples == 12
    assert set(bert.fidelity) == {"plain_swap", "attention_transfer", "recovery"} and bert.config.recovery == "lora"
    assert isinstance(bert.stages["attention_transfer"], StageRecord) and bert.stages["recovery"].steps > 0


def test_the_card_of_a_file_written_by_main_renders_as_it_did():
    record = ConversionRecord.from_json(json.loads((FIXTURES / "results_bert_conversion_a224fa2.json").read_text()))
    card = build_conversion_card(
        record, family="bert", task="base", model_name="bert_kernel", folder="/tmp/arch2fix/bert_kernel"
    )
    assert str(card) == (FIXTURES / "card_bert_conversion_a224fa2.md").read_text()
    assert str(build_conversion_card(record.to_json(), family="bert", task="base", model_name="bert_kernel",
                                     folder="/tmp/arch2fix/bert_kernel")) == str(card)  # fmt: skip


def test_an_older_file_loads_and_keeps_what_it_does_not_know():
    old = {
        "teacher": {"name_or_path": "org/vit", "architecture": "ViTForImageClassification"},
        "student": {"architecture": "RobAttrViTForImageClassification", "kernel_feature_map": "elu"},
        "conversion": {"feature_map": "elu", "transfer_steps": 10},
        "data": {"num_examples": 32, "num_eval_examples": 8, "dataset": "random tensors", "note": "kept"},
        "fidelity": {"plain_swap": {"top1_agreement": 0.5}},
        "stages": {"attention_transfer": {"steps": 10, "trainable_parameters": 64, "wall_time_s": 1.0}},
        "notes": "kept",
    }
    record = ConversionRecord.from_json(old)
    assert (
        record.teacher.attention_type is None and record.data.splits is None and record.data.extra == {"note": "kept"}
    )
    assert record.stages["attention_transfer"] == StageRecord(steps=10, trainable_parameters=64, wall_time_s=1.0)
    assert record.config.transfer_steps == 10 and record.config.recovery == ConversionConfig().recovery
    written = record.to_json()
    assert written["notes"] == "kept" and written["data"] == old["data"] and written["conversion"] == old["conversion"]
    assert ConversionRecord.from_json({}).to_json()["data"] == {}  # sizes not counted are not written


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param([1, 2], "must hold a JSON object", id="top-level-list"),
        pytest.param({"teacher": "org/vit"}, "section 'teacher' must be a JSON object", id="teacher-string"),
        pytest.param({"fidelity": {"recovery": 0.9}}, r"fidelity\['recovery'\] must be a JSON object", id="fidelity"),
        pytest.param({"stages": {"recovery": [1]}}, r"stages\['recovery'\] must be a JSON object", id="stages"),
    ],
)
def test_a_malformed_record_is_refused(data, message):
    with pytest.raises(ValueError, match=message):
        ConversionRecord.from_json(data)


def test_read_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No results\.json .*finished conversion"):
        ConversionRecord.read(tmp_path)
    (tmp_path / "results.json").write_text('{"data": 3}')
    with pytest.raises(ValueError, match=r"results\.json: section 'data' must be a JSON object"):
        ConversionRecord.read(tmp_path)


@pytest.mark.parametrize("path", WRITTEN_BY_MAIN, ids=lambda path: path.stem)
def test_the_recipes_typed_data_description_is_written_as_main_wrote_it(path):
    """``load_conversion_data``'s typed ``info`` (the data set's name and its splits, no sizes) added to what the
    conversion counted gives the ``data`` section a224fa2 wrote, byte for byte."""
    written = json.loads(path.read_text())["data"]
    splits = DataSplitsRecord(**{key: written.get(key) for key in DataSplitsRecord.json_keys()})
    info = ConversionDataRecord(dataset=written["dataset"], splits=splits)
    counted = ConversionDataRecord(
        num_examples=written["num_examples"], num_eval_examples=written["num_eval_examples"]
    )
    assert json.dumps(counted.merged(info).to_json()) == json.dumps(written)


@pytest.mark.parametrize(
    ("given", "written"),
    [
        pytest.param({"train_split": "train"}, {"train_split": "train"}, id="one-split-key"),
        pytest.param({"split_seed": 3, "dataset_config": None}, {"dataset_config": None, "split_seed": 3},
                     id="split-keys-in-field-order"),
        pytest.param({"note": "kept", "dataset": "mine", "sources": ["a"]}, {"dataset": "mine", "sources": ["a"],
                     "note": "kept"}, id="name-split-and-unknown-keys"),
        pytest.param({}, {}, id="nothing"),
    ],
)  # fmt: skip
def test_a_partial_data_description_writes_only_what_was_given(given, written):
    counted = ConversionDataRecord(num_examples=48, num_eval_examples=12)
    merged = counted.merged(given)
    assert list(merged.to_json().items()) == list({"num_examples": 48, "num_eval_examples": 12, **written}.items())
    assert ConversionDataRecord.from_json(merged.to_json()).to_json() == merged.to_json()


def test_an_older_file_with_some_split_keys_round_trips_exactly():
    old = {"data": {"num_examples": 8, "dataset": "mine", "train_split": "train", "split_seed": None}}
    assert ConversionRecord.from_json(old).to_json()["data"] == old["data"]


@pytest.mark.parametrize(
    ("repo_id", "loads"),
    [("org/bert_kernel", "org/bert_kernel"), ("bert_kernel", "/tmp/out/bert_kernel"), (None, "/tmp/out/bert_kernel")],
    ids=["org-name", "bare-name", "no-id"],
)
def test_the_cards_snippet_loads_a_full_repo_id_or_the_folder(repo_id, loads):
    """A bare NAME lands in the token user's namespace, unknown before the push: the snippet loads the folder."""
    record = ConversionRecord.from_json(json.loads((FIXTURES / "results_bert_conversion_a224fa2.json").read_text()))
    card = build_conversion_card(record, family="bert", task="base", repo_id=repo_id, folder="/tmp/out/bert_kernel")
    assert f'from_pretrained("{loads}", trust_remote_code=True)' in str(card)
