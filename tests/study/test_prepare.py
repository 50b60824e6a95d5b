"""Start points: a pretrained image arm's kernel cells start from the checkpoint converted to kernel attention on
the arm's own training images, made once and reused."""

import json

from tiny_models import tiny_vit
from transformers import ViTImageProcessor

from hf_robattr.models import RobAttrViTForImageClassification
from hf_robattr.study.grid import ArmGrid
from hf_robattr.study.prepare import CheckpointStartRecord, StartPoint, prepare_start_points, start_key
from hf_robattr.study.protocol import ArmProtocol
from hf_robattr.study.report_files import _describe
from hf_robattr.study.scales import StudySettings


def test_pretrained_image_arm_is_converted_once(tmp_path):
    checkpoint = tmp_path / "teacher"
    tiny_vit(num_labels=4).save_pretrained(checkpoint)
    ViTImageProcessor(size={"height": 8, "width": 8}).save_pretrained(checkpoint)
    protocol = ArmProtocol(
        arm="img", model="vit", dataset="synthetic_images", dataset_size=60, pretrained=str(checkpoint),
        image_size=8, patch_size=2,
        conversion=(("transfer_steps", 1), ("recovery_steps", 1), ("batch_size", 4), ("num_texts", 8),
                    ("num_eval_texts", 4)),
    )  # fmt: skip
    settings = StudySettings("test", ((protocol, ArmGrid((0.1,), (8,), seeds=1)),))
    pending = prepare_start_points(settings, ("img",), tmp_path / "study", train=False)
    assert pending[start_key("img", "kernel")].kind == "pending"
    points = prepare_start_points(settings, ("img",), tmp_path / "study")
    softmax, kernel = points[start_key("img", "softmax")], points[start_key("img", "kernel")]
    assert softmax.kind == "pretrained" and softmax.checkpoint == str(checkpoint)
    assert kernel.kind == "converted" and kernel.record["num_texts"] == 8
    model = RobAttrViTForImageClassification.from_pretrained(kernel.checkpoint, num_labels=4)
    assert model.config.attention_type == "kernel"
    again = prepare_start_points(settings, ("img",), tmp_path / "study")  # reused, not converted again
    assert again[start_key("img", "kernel")].record == kernel.record
    record = CheckpointStartRecord.from_json(kernel.record)
    assert record.checkpoint == str(checkpoint) and record.num_texts == 8 and record.embedding_cosine is not None
    assert CheckpointStartRecord.from_json(softmax.record).checkpoint == str(checkpoint)


# conversion_record.json as the string-keyed code of b9d0d6c wrote it (json.dumps(record, indent=1, default=str))
OLD_CONVERSION_RECORD = json.dumps(
    {
        "checkpoint": "nreimers/MiniLM",
        "options": {"feature_map": "hedgehog", "seed": 0},
        "num_texts": 256,
        "fidelity": {
            "attention_transfer": {"embedding_cosine_mean": 0.91, "logit_kl": 0.2},
            "recovery": {"embedding_cosine_mean": 0.975, "logit_kl": 0.01},
        },
        "seconds": 12.5,
    },
    indent=1,
)


def test_an_older_conversion_record_reads_back_and_is_written_the_same():
    record = CheckpointStartRecord.from_json(json.loads(OLD_CONVERSION_RECORD))
    assert json.dumps(record.to_json(), indent=1, default=str) == OLD_CONVERSION_RECORD
    assert record.embedding_cosine == 0.975  # the last stage measured: recovery
    only_transfer = CheckpointStartRecord.from_json({"checkpoint": "c", "fidelity": {"attention_transfer": {}}})
    assert only_transfer.embedding_cosine is None and only_transfer.options == {}


def test_the_report_describes_a_start_point_from_its_record():
    converted = StartPoint("minilm", "kernel", "/x", "converted", json.loads(OLD_CONVERSION_RECORD))
    assert _describe(converted) == (
        "`nreimers/MiniLM` converted to kernel attention ({'feature_map': 'hedgehog', 'seed': 0}), held-out "
        "embedding cosine to the softmax model 0.975"
    )
    pretrained = StartPoint("minilm", "softmax", "/x", "pretrained", {"checkpoint": "nreimers/MiniLM"})
    assert _describe(pretrained) == "pretrained `nreimers/MiniLM`"
