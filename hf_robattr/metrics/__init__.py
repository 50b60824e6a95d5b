"""hf_robattr.metrics: the ``attribution_robustness`` evaluate module, what makes it loadable by name, and its Hub
Space.

Importing this package registers the module with ``evaluate``; so does ``import hf_robattr`` (as soon as
``evaluate`` is imported) and, in an environment where hf_robattr is installed, the start-up hook for a process
that imports neither: see :mod:`hf_robattr.metrics.loading`.
"""

from .attribution_robustness.attribution_robustness import AttributionRobustness
from .compute import compute_attribution_robustness
from .inputs import dataset_to_inputs
from .loading import install_metric, metric_path, register_metric
from .space import MetricSpaceError, push_metric_space, write_metric_space


register_metric()

__all__ = [
    "AttributionRobustness",
    "MetricSpaceError",
    "compute_attribution_robustness",
    "dataset_to_inputs",
    "install_metric",
    "metric_path",
    "push_metric_space",
    "register_metric",
    "write_metric_space",
]
