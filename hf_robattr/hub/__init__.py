"""hf_robattr.hub: model cards with robustness results and pictures, and pushing a run folder to the Hub."""

from .callback import RobAttrModelCardCallback
from .card import build_model_card, save_model_card, template_path
from .card_data import RobAttrModelCardData
from .publish import publish_run, publish_run_result, run_summary
from .push import HubPushError, check_output_dir, push_to_hub


__all__ = [
    "HubPushError",
    "RobAttrModelCardCallback",
    "RobAttrModelCardData",
    "build_model_card",
    "check_output_dir",
    "publish_run",
    "publish_run_result",
    "push_to_hub",
    "run_summary",
    "save_model_card",
    "template_path",
]
