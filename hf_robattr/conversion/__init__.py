"""hf_robattr.conversion: turn a pretrained softmax ViT/BERT into a kernel-attention model that keeps what it knew.

:func:`convert_to_kernel` runs attention transfer (stage 1: feature maps trained so that every layer's kernel
attention matches the teacher's softmax attention on the teacher's own inputs) and recovery (stage 2: LoRA through
``peft``, or full fine-tuning, on the teacher's outputs), measures fidelity on held-out data and returns a
:class:`ConversionResult` whose ``save_pretrained`` writes a Hub folder.
"""

# The offline English prose lives in ``hf_robattr.data``; still importable from here (the study imports it here).
from hf_robattr.data.prose import PROSE_SOURCES, english_prose, prose_fingerprint  # noqa: F401

from .api import CONVERSION_STAGES, ConversionResult, convert_to_kernel
from .card import build_conversion_card
from .config import PARAMETER_FREE_FEATURE_MAPS, RECOVERY_MODES, ConversionConfig
from .fidelity import measure_fidelity
from .record import ConversionRecord, StageRecord
from .recovery import RecoveryTrainer
from .saving import save_conversion
from .student import CONVERTIBLE_MODELS
from .transfer import AttentionTransferTrainer


__all__ = [
    "CONVERSION_STAGES",
    "CONVERTIBLE_MODELS",
    "PARAMETER_FREE_FEATURE_MAPS",
    "RECOVERY_MODES",
    "AttentionTransferTrainer",
    "ConversionConfig",
    "ConversionRecord",
    "ConversionResult",
    "RecoveryTrainer",
    "StageRecord",
    "build_conversion_card",
    "convert_to_kernel",
    "measure_fidelity",
    "save_conversion",
]
