"""hf_robattr.demo: the attribution explorer, a Gradio page over one model or two side by side.

``hf-robattr demo MODEL [MODEL2]`` serves it; :func:`build_app` returns the ``gradio.Blocks`` (API endpoint
``/explain``). Needs the ``demo`` extra (``pip install -e '.[demo]'`` in a clone).
"""

from .app import API_NAME, build_app, launch_demo
from .explain import DEMO_MEASURES, DemoResult, explain
from .loading import DemoInputError, DemoModel, DemoModelError, load_demo_model


__all__ = [
    "API_NAME",
    "DEMO_MEASURES",
    "DemoInputError",
    "DemoModel",
    "DemoModelError",
    "DemoResult",
    "build_app",
    "explain",
    "launch_demo",
    "load_demo_model",
]
