"""hf_robattr: robust attributions for Hugging Face ViT and BERT models.

Importing the package registers the kernel-attention models with the ``transformers`` Auto classes and makes the
``attribution_robustness`` metric loadable by name with ``evaluate.load``.
"""

from . import attribution, data, hub, metrics, models, robustness, training
from .attribution import *  # noqa: F403
from .data import *  # noqa: F403
from .hub import *  # noqa: F403
from .metrics import *  # noqa: F403
from .models import *  # noqa: F403
from .robustness import *  # noqa: F403
from .training import *  # noqa: F403


__version__ = "0.1.0"

__all__ = [
    "__version__",
    *models.__all__,
    *data.__all__,
    *attribution.__all__,
    *robustness.__all__,
    *training.__all__,
    *hub.__all__,
    *metrics.__all__,
]
