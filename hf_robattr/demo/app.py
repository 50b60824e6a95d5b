"""The attribution explorer: a Gradio page (and its ``/explain`` API) over one model or two side by side."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..attribution import ATTRIBUTION_METHODS
from ..extras import install_hint
from ..robustness import ATTACKS, NORMS
from .explain import (
    NUM_STEPS_RANGE,
    PAGE_SETTINGS,
    explain,
    mixed_kinds_error,
    summary_markdown,
    token_highlights,
)
from .loading import IMAGE, TEXT, DemoInputError, DemoModel, DemoModelError, load_demo_model


try:
    import gradio as gr
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"hf_robattr.demo needs Gradio ({error}); install it with: {install_hint('demo')}") from error


logger = logging.getLogger(__name__)

API_NAME = "explain"
TITLE = "hf_robattr attribution explorer"
INTRO = (
    "Pick an input, an attribution method and an attack. The attack searches the epsilon-ball around the input for "
    "the point that moves the attribution map most while keeping the predicted label (PGD on the map, as in "
    "Ghorbani et al. 2019); the scores compare the clean map with the attacked one for this example, exactly as "
    "`evaluate_attribution_robustness` scores it."
)


def _load_all(sources: Sequence[DemoModel | str | Path]) -> tuple[list[DemoModel], list[str]]:
    models, errors = [], []
    for source in sources:
        if isinstance(source, DemoModel):
            models.append(dataclasses.replace(source))  # a copy: renaming a column never renames the caller's model
            continue
        try:
            models.append(load_demo_model(source))
        except DemoModelError as error:
            logger.warning("%s", error)
            errors.append(str(error))
    if len(models) == 2 and models[0].name == models[1].name:
        models[1] = dataclasses.replace(
            models[1], name=f"{models[1].name} (2)"
        )  # two folders with the same name: tell their columns apart
    mixed = mixed_kinds_error(models)
    if mixed:
        errors.append(mixed)
        models = []
    return models, errors


def _choices() -> dict[str, list[str]]:
    return {"method": sorted(ATTRIBUTION_METHODS), "attack": sorted(ATTACKS), "norm": list(NORMS)}


def _header(models: Sequence[DemoModel], errors: Sequence[str]) -> str:
    lines = [f"# {TITLE}"]
    if models:
        lines.append(
            "Model" + ("s, side by side: " if len(models) > 1 else ": ") + ", ".join(m.describe() for m in models)
        )
        lines.append(INTRO)
    lines += [f"**Error:** {error}" for error in errors]
    lines += [f"*{note}*" for model in models for note in model.notes]
    return "\n\n".join(lines)


def build_app(
    model: DemoModel | str | Path, model2: DemoModel | str | Path | None = None, *, title: str = TITLE
) -> Any:
    """The attribution explorer for ``model`` (and ``model2`` side by side) as a ``gradio.Blocks``.

    Args:
        model: a run folder, a Hub model id, or a :class:`DemoModel` from :func:`load_demo_model`.
        model2: an optional second model of the same kind (e.g. the kernel-attention twin), shown beside the first
            on the same input and attack.
        title: the browser tab title.

    The page starts from the first model's ``results.json`` robustness settings. Its API endpoint ``/explain``
    takes ``(input, method, attack, epsilon, norm, k, num_steps)`` (the input is an image file or a sentence; the
    last three may be left out) and returns ``(picture, scores)``: the rendered maps and a JSON dict with, per
    model, the predictions before and after the attack, the per-example scores and the maps. A model that cannot
    be loaded and every bad input give a message on the page (``gradio.Error``), never a traceback.
    """
    models, errors = _load_all([source for source in (model, model2) if source is not None])
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(_header(models, errors), elem_id="header")
        if not models:
            return app
        kind, config, choices = models[0].kind, models[0].config, _choices()
        with gr.Row():
            with gr.Column(scale=1):
                if kind == IMAGE:
                    source = gr.Image(
                        type="filepath", label="Image", sources=["upload", "clipboard"], height=280, elem_id="input"
                    )
                else:
                    source = gr.Textbox(label="Sentence", lines=2, placeholder="Type a sentence", elem_id="input")
                examples = models[0].examples
                if examples:
                    gr.Examples(examples=[[example] for example in examples], inputs=[source], label="Examples")
                method = gr.Dropdown(choices["method"], value=config.methods[0], label="Attribution method")
                attack = gr.Dropdown(choices["attack"], value=config.attack, label="Attack")
                epsilon = gr.Number(value=config.epsilon, minimum=0, label="Epsilon (radius of the perturbation)")
                with gr.Accordion("More settings", open=False):
                    norm = gr.Radio(choices["norm"], value=config.norm, label="Norm of the ball")
                    k = gr.Number(value=config.k, label="k: top-k size (a count, or a fraction in (0, 1))")
                    num_steps = gr.Slider(*NUM_STEPS_RANGE, value=config.num_steps, step=1, label="Attack steps")
                run = gr.Button("Explain", variant="primary", elem_id="explain")
            with gr.Column(scale=2):
                picture = gr.Image(
                    label="Input, clean map, attacked input, attacked map",
                    type="pil",
                    show_label=False,
                    interactive=False,
                    elem_id="maps",
                )
                summary = gr.Markdown(elem_id="summary")
                highlights = []
                if kind == TEXT:
                    for m in models:
                        with gr.Row():
                            highlights.append(gr.HighlightedText(label=f"{m.name}: clean map", show_legend=False))
                            highlights.append(gr.HighlightedText(label=f"{m.name}: attacked map", show_legend=False))
                with gr.Accordion("Scores and maps as JSON (the /explain API's output)", open=False):
                    scores = gr.JSON(label="Scores", elem_id="scores")

        def run_explain(value, method, attack, epsilon, norm, k, num_steps, progress=gr.Progress()):  # noqa: B008
            settings = dict(zip(PAGE_SETTINGS, (method, attack, epsilon, norm, k, num_steps)))
            try:
                result = explain(models, value, progress=lambda f, message: progress(f, desc=message), **settings)
            except DemoInputError as error:
                raise gr.Error(str(error), duration=None, print_exception=False) from error
            except Exception as error:  # a message on the page, the traceback in the server log
                logger.exception("The demo failed on an input")
                raise gr.Error(
                    f"Could not explain this input: {type(error).__name__}: {error}", duration=None
                ) from error
            return result.picture, result.scores

        def details(result):
            outputs = [summary_markdown(result or {})]
            for record in (result or {}).get("models", []):
                outputs += [token_highlights(record, "clean"), token_highlights(record, "attacked")]
            outputs = outputs[: 1 + len(highlights)]
            return tuple(outputs) if highlights else outputs[0]

        event = run.click(
            run_explain,
            inputs=[source, method, attack, epsilon, norm, k, num_steps],
            outputs=[picture, scores],
            api_name=API_NAME,
            preprocess=kind != IMAGE,  # images are opened by the demo, so a corrupt file gets a clear message
        )
        event.success(details, inputs=[scores], outputs=[summary, *highlights], api_visibility="private")
    return app


def launch_demo(
    models: Sequence[DemoModel | str | Path],
    *,
    server_name: str = "127.0.0.1",
    server_port: int | None = None,
    share: bool = False,
    **launch_kwargs: Any,
) -> Any:
    """Build the explorer for one or two models and serve it (blocks until interrupted unless
    ``prevent_thread_lock=True`` is passed). ``share=True`` also opens a temporary public ``gradio.live`` link."""
    if not 1 <= len(models) <= 2:
        raise ValueError(f"`models` must hold one or two models, got {len(models)}.")
    app = build_app(*models)
    app.launch(server_name=server_name, server_port=server_port, share=share, **launch_kwargs)
    return app
