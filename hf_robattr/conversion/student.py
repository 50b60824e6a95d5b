"""The teacher/student pair of a conversion: a frozen softmax copy of the user's model and its kernel twin.

Both are RobAttr models of the same family and head as the user's model (``BertModel`` -> ``RobAttrBertModel``, ...)
holding its weights; the student adds the feature maps. The user's model itself is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from transformers import (
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    PreTrainedModel,
    ViTForImageClassification,
    ViTModel,
)

from hf_robattr.models import (
    RobAttrBertForMaskedLM,
    RobAttrBertForSequenceClassification,
    RobAttrBertModel,
    RobAttrViTForImageClassification,
    RobAttrViTModel,
)


__all__ = ["CONVERTIBLE_MODELS", "ModelPair", "attention_modules", "build_model_pair", "model_family", "model_task"]

# HF class (RobAttr classes subclass them) -> (RobAttr class, family, task). Most specific first.
CONVERTIBLE_MODELS: dict[type[PreTrainedModel], tuple[type[PreTrainedModel], str, str]] = {
    BertForMaskedLM: (RobAttrBertForMaskedLM, "bert", "masked_lm"),
    BertForSequenceClassification: (RobAttrBertForSequenceClassification, "bert", "classification"),
    BertModel: (RobAttrBertModel, "bert", "base"),
    ViTForImageClassification: (RobAttrViTForImageClassification, "vit", "classification"),
    ViTModel: (RobAttrViTModel, "vit", "base"),
}


def _lookup(model: object) -> tuple[type[PreTrainedModel], str, str]:
    for hf_class, entry in CONVERTIBLE_MODELS.items():
        if isinstance(model, hf_class):
            return entry
    allowed = ", ".join(cls.__name__ for cls in CONVERTIBLE_MODELS)
    raise TypeError(
        f"model must be a ViT or BERT model (one of {allowed}, or their hf_robattr RobAttr* versions), "
        f"got {type(model).__name__}."
    )


def model_family(model: object) -> str:
    """``"bert"`` or ``"vit"``; ``TypeError`` for any other model."""
    return _lookup(model)[1]


def model_task(model: object) -> str:
    """``"base"``, ``"classification"`` or ``"masked_lm"``; ``TypeError`` for an unsupported model."""
    return _lookup(model)[2]


def check_convertible(model: object) -> None:
    """Raise unless ``model`` is a softmax ViT/BERT model of a supported class."""
    _lookup(model)
    attention_type = getattr(model.config, "attention_type", "softmax")
    if attention_type != "softmax":
        raise ValueError(
            f"model already uses attention_type={attention_type!r}: convert_to_kernel needs the softmax model as its "
            "teacher. Load the softmax checkpoint (attention_type='softmax', the default) and convert that."
        )


@dataclass
class ModelPair:
    """The frozen softmax ``teacher`` and the kernel ``student`` built from one model; ``family`` and ``task``."""

    teacher: PreTrainedModel
    student: PreTrainedModel
    family: str
    task: str


def _robattr_model(model_class: type[PreTrainedModel], config, source: PreTrainedModel) -> PreTrainedModel:
    kwargs = {}
    if model_class in (RobAttrBertModel, RobAttrViTModel):
        kwargs["add_pooling_layer"] = getattr(source, "pooler", None) is not None
    return model_class(config, **kwargs)


def build_model_pair(
    model: PreTrainedModel, *, feature_map: str, num_features: int | None = None, kernel_eps: float | None = None
) -> ModelPair:
    """Build the teacher (softmax) and student (``feature_map`` kernel attention) from ``model``'s config and weights.

    Raises ``TypeError`` for a model that is not ViT/BERT, ``ValueError`` for a kernel model or an unknown map.
    """
    check_convertible(model)
    model_class, family, task = _lookup(model)
    config_class = model_class.config_class
    base = {k: v for k, v in model.config.to_dict().items() if not k.startswith("kernel_")}
    base.pop("attention_type", None)
    teacher_config = config_class.from_dict({**base, "attention_type": "softmax"})
    # Separate query and key maps (Hedgehog): a config without the field would load as the legacy shared map.
    student_fields = {"attention_type": "kernel", "kernel_feature_map": feature_map, "kernel_shared_qk_map": False}
    if num_features is not None:
        student_fields["kernel_num_features"] = num_features
    if kernel_eps is not None:
        student_fields["kernel_eps"] = kernel_eps
    student_config = config_class.from_dict({**base, **student_fields})

    state = model.state_dict()
    teacher = _robattr_model(model_class, teacher_config, model)
    teacher.load_state_dict(state, strict=True)
    student = _robattr_model(model_class, student_config, model)
    missing, unexpected = student.load_state_dict(state, strict=False)
    if unexpected or any(".feature_map." not in key for key in missing):
        raise RuntimeError(f"The kernel student does not match the model's weights: {missing=}, {unexpected=}.")
    parameter = next(model.parameters())
    teacher.to(device=parameter.device, dtype=parameter.dtype).eval().requires_grad_(False)
    student.to(device=parameter.device, dtype=parameter.dtype)
    for name_or_path in (getattr(model, "name_or_path", None), getattr(model.config, "_name_or_path", None)):
        if name_or_path:
            student.config._name_or_path = teacher.config._name_or_path = name_or_path
            break
    return ModelPair(teacher=teacher, student=student, family=family, task=task)


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """The self-attention modules of a RobAttr model (or of a peft/DDP wrapper around one), in layer order."""
    inner = model
    while not hasattr(inner, "_robattr_attention_classes"):
        for attribute in ("module", "base_model", "model"):  # DDP, peft PeftModel, peft LoraModel
            if hasattr(inner, attribute):
                inner = getattr(inner, attribute)
                break
        else:
            raise TypeError(f"{type(model).__name__} holds no RobAttr model.")
    return [module for module in inner.modules() if isinstance(module, inner._robattr_attention_classes)]
