"""hf_robattr.metrics: the ``attribution_robustness`` evaluate module and what makes it loadable by name.

Importing this package registers the module with ``evaluate`` (``import hf_robattr`` arranges that it happens as
soon as ``evaluate`` is imported), see :mod:`hf_robattr.metrics.loading`.
"""

from .attribution_robustness.attribution_robustness import AttributionRobustness
from .compute import compute_attribution_robustness
from .inputs import dataset_to_inputs
from .loading import install_metric, metric_path, register_metric


register_metric()

__all__ = [
    "AttributionRobustness",
    "compute_attribution_robustness",
    "dataset_to_inputs",
    "install_metric",
    "metric_path",
    "register_metric",
]
