"""Start points: a pretrained image arm's kernel cells start from the checkpoint converted to kernel attention on
the arm's own training images, made once and reused."""

from tiny_models import tiny_vit
from transformers import ViTImageProcessor

from hf_robattr.models import RobAttrViTForImageClassification
from hf_robattr.study.grid import ArmGrid
from hf_robattr.study.prepare import prepare_start_points, start_key
from hf_robattr.study.protocol import ArmProtocol
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
