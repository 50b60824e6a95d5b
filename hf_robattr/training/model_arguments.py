"""Model arguments of the recipes: a checkpoint, or a tiny model from scratch, with the attention chosen by name.

The class of the model arguments also says which modality a run is: :class:`VisionModelArguments` trains a ViT on
images, :class:`TextModelArguments` a BERT on text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from hf_robattr.attribution.argument_checks import check_choice, check_range, check_types
from hf_robattr.models import ATTENTION_TYPES, FEATURE_MAPS


__all__ = ["KERNEL_FEATURE_MAPS", "ModelArguments", "TextModelArguments", "VisionModelArguments"]

KERNEL_FEATURE_MAPS = tuple(FEATURE_MAPS)


@dataclass
class ModelArguments:
    """Which model to train: a tiny one from scratch, or a checkpoint, with the attention chosen by name.

    The from-scratch sizes (``hidden_size``, ``num_hidden_layers``, ...) are ignored when ``model_name_or_path``
    is set: the checkpoint's own configuration decides them.
    """

    modality: ClassVar[str] = ""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint (Hub id or path); none: a tiny model from scratch."}
    )
    attention_type: str | None = field(
        default=None,
        metadata={
            "help": f"Attention: one of {list(ATTENTION_TYPES)}, swapped in on a checkpoint. Default: the "
            "checkpoint's own (softmax for a plain ViT/BERT checkpoint), softmax from scratch."
        },
    )
    kernel_feature_map: str | None = field(
        default=None,
        metadata={
            "help": f"Feature map of kernel attention, one of {list(KERNEL_FEATURE_MAPS)}. Default: the "
            "checkpoint's own, elu from scratch. Without --attention_type it needs a kernel checkpoint (a softmax "
            "model would ignore it); with --attention_type softmax it is only stored in the config."
        },
    )
    hidden_size: int = field(default=64, metadata={"help": "From scratch: hidden size."})
    num_hidden_layers: int = field(default=2, metadata={"help": "From scratch: number of layers."})
    num_attention_heads: int = field(default=4, metadata={"help": "From scratch: attention heads."})
    intermediate_size: int = field(default=128, metadata={"help": "From scratch: MLP size."})
    initializer_range: float = field(
        default=0.02, metadata={"help": "From scratch: std of the initial weights (larger suits plain SGD)."}
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={"help": "Softmax attention backend (default: the model's own; regularizers run SDPA as MATH)."},
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache downloaded checkpoints."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow checkpoints with their own modeling code."}
    )

    def __post_init__(self) -> None:
        check_types(self)
        if self.attention_type is not None:
            check_choice("--attention_type", self.attention_type, ATTENTION_TYPES)
        if self.kernel_feature_map is not None:
            check_choice("--kernel_feature_map", self.kernel_feature_map, KERNEL_FEATURE_MAPS)
            if self.attention_type is None and self.model_name_or_path is None:
                raise ValueError(
                    f"--kernel_feature_map {self.kernel_feature_map!r} needs --attention_type kernel: a model from "
                    "scratch has softmax attention by default, which uses no feature map, so the run would train "
                    "softmax attention."
                )
        for flag, value in (
            ("--hidden_size", self.hidden_size),
            ("--num_hidden_layers", self.num_hidden_layers),
            ("--num_attention_heads", self.num_attention_heads),
            ("--intermediate_size", self.intermediate_size),
        ):
            check_range(flag, value, minimum=1)
        check_range("--initializer_range", self.initializer_range, above=0)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"--hidden_size ({self.hidden_size}) must be divisible by --num_attention_heads "
                f"({self.num_attention_heads})."
            )


@dataclass
class VisionModelArguments(ModelArguments):
    """ViT model arguments: image and patch size of the from-scratch model."""

    modality: ClassVar[str] = "image"

    image_size: int = field(
        default=32, metadata={"help": "From scratch: input resolution (images are resized to it)."}
    )
    patch_size: int = field(default=4, metadata={"help": "From scratch: patch size (32/4 -> 64 patches)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("--image_size", self.image_size, minimum=1)
        check_range("--patch_size", self.patch_size, minimum=1)
        if self.image_size % self.patch_size:
            raise ValueError(
                f"--patch_size ({self.patch_size}) must divide --image_size ({self.image_size}): the image is cut "
                "into whole patches."
            )


@dataclass
class TextModelArguments(ModelArguments):
    """BERT model arguments: the from-scratch model's sequence length, and which tokenizer to use."""

    modality: ClassVar[str] = "text"

    max_position_embeddings: int = field(
        default=64, metadata={"help": "From scratch: maximum sequence length (>= --max_seq_length)."}
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={"help": "Tokenizer (Hub id or path); default: the checkpoint's, or the offline one from scratch."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("--max_position_embeddings", self.max_position_embeddings, minimum=1)
