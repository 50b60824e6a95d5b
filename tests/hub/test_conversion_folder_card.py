"""A converted model's folder holds a conversion's results.json: the training-run card refuses it with a message
that says so, and the conversion's own README.md is never replaced by an empty training card."""

import json
import shutil
from pathlib import Path

import pytest

from hf_robattr.cli import main
from hf_robattr.conversion import ConversionRecord
from hf_robattr.hub import save_model_card
from hf_robattr.training import RunRecord


FIXTURES = Path(__file__).resolve().parents[1] / "conversion" / "fixtures"


@pytest.fixture
def converted(tmp_path) -> Path:
    """A folder as the conversion writes it: its results.json (written by main a224fa2) and its card."""
    folder = tmp_path / "converted"
    folder.mkdir()
    shutil.copy(FIXTURES / "results_bert_conversion_a224fa2.json", folder / "results.json")
    shutil.copy(FIXTURES / "card_bert_conversion_a224fa2.md", folder / "README.md")
    return folder


def test_a_conversion_record_is_no_run_record(converted):
    data = json.loads((converted / "results.json").read_text())
    with pytest.raises(ValueError, match=r"record of an attention-transfer conversion \(sections \['teacher', "):
        RunRecord.from_json(data)
    assert ConversionRecord.read(converted).teacher.name_or_path  # the conversion's own reader still takes it


def test_the_card_command_leaves_the_conversion_card_alone(converted, capsys):
    card = (converted / "README.md").read_bytes()
    with pytest.raises(ValueError, match="conversion"):
        save_model_card(converted)
    assert main(["card", str(converted)]) == 2
    error = capsys.readouterr().err
    assert "hf-robattr card: error:" in error and "attention-transfer conversion" in error
    assert "ConversionRecord" in error and "README.md" in error
    assert (converted / "README.md").read_bytes() == card
    assert sorted(path.name for path in converted.iterdir()) == ["README.md", "results.json"]  # no pictures either


def test_a_training_record_with_extra_sections_still_loads(run_dir):
    """A run record that also carries a ``teacher`` entry (e.g. a user's note) is still a run record: it has its
    ``model`` section."""
    data = json.loads((run_dir / "results.json").read_text())
    record = RunRecord.from_json({**data, "teacher": {"note": "kept"}})
    assert record.extra == {"teacher": {"note": "kept"}} and record.model.attention_type == "kernel"
