"""Render a model card (``README.md``) for an hf_robattr run: the sections' strings come from
:mod:`~hf_robattr.hub.card_sections`, the layout from the template."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard

from ..figures import plot_training_curves
from ..paper import PAPER_BIBTEX
from .attribution_picture import ATTRIBUTION_PICTURE, TRAINING_PICTURE, draw_attribution_picture
from .card_data import RobAttrModelCardData
from .card_sections import (
    data_section,
    model_section,
    pictures,
    results_section,
    summary_section,
    training_section,
    usage_section,
)
from .card_usage import card_with_repo_id  # noqa: F401 (its home before hub/card_usage.py)
from .space import demo_section


logger = logging.getLogger(__name__)

TEMPLATE_NAME = "robattr_model_card"
CARD_FILE = "README.md"


def template_path(name: str = TEMPLATE_NAME) -> Path:
    """The Jinja template ``NAME.md``: the packaged copy, else the repository's ``model_cards/`` folder.

    Both copies are identical (a test checks it): ``model_cards/`` is the one to edit, the packaged one ships in the
    wheel.
    """
    candidates = [
        Path(__file__).resolve().parent / "templates" / f"{name}.md",
        Path(__file__).resolve().parents[2] / "model_cards" / f"{name}.md",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"Model card template {name!r} not found; looked in {[str(c) for c in candidates]}.")


def build_model_card(
    data: RobAttrModelCardData, output_dir: str | Path, *, template: str | Path | None = None
) -> ModelCard:
    """Render the card for ``data``; pictures are referenced when they exist in ``output_dir``."""
    output_dir = Path(output_dir)
    path = Path(template) if template is not None else template_path()
    if not path.is_file():
        raise FileNotFoundError(f"`template`={str(template)!r} is not a file.")
    return ModelCard.from_template(
        data,
        template_path=str(path),
        title=data.title,
        summary=summary_section(data),
        model_section=model_section(data),
        training_section=training_section(data),
        data_section=data_section(data),
        results_section=results_section(data),
        pictures=pictures(data, output_dir),
        demo_section=demo_section(data.space_id) if data.space_id else "",
        usage_section=usage_section(data, str(output_dir)),
        citation=PAPER_BIBTEX,
    )


def save_model_card(
    output_dir: str | Path,
    card_data: RobAttrModelCardData | None = None,
    *,
    model: Any = None,
    inputs: Any = None,
    tokenizer: Any = None,
    template: str | Path | None = None,
    **card_fields: Any,
) -> Path:
    """Write ``OUTPUT_DIR/README.md`` and its pictures, making the folder a complete Hub model repo.

    Args:
        output_dir: the run folder (model files and ``results.json``).
        card_data: the card data; default: read from ``OUTPUT_DIR/results.json``.
        model: with ``inputs``, draw the attribution maps (clean beside attacked) of these samples.
        inputs: a few test samples (pixel values or a tokenized batch; the first 4 are drawn, attacked as in
            ``robustness_config``, with the calibrated radius where it was ``epsilon="auto"``); without them an existing ``attribution_maps.png`` is kept and shown.
        tokenizer: for text models, labels the picture's bars with tokens.
        template: a Jinja template path; default: the packaged ``robattr_model_card.md``.
        **card_fields: user fields of :class:`RobAttrModelCardData` (``model_id``, ``tags``, ``language``...).

    Returns:
        The path of the written ``README.md``.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise FileNotFoundError(f"`output_dir`={str(output_dir)!r} is not a directory.")
    if card_data is None:
        card_data = RobAttrModelCardData.from_output_dir(output_dir, **card_fields)
    else:
        for name, value in card_fields.items():
            if not hasattr(card_data, name):
                raise TypeError(f"unknown card field {name!r}; see RobAttrModelCardData for the fields.")
            setattr(card_data, name, value)
        card_data.__post_init__()
    if card_data.log_history:
        plot_training_curves(card_data.log_history, output_dir / TRAINING_PICTURE)
    if (model is None) != (inputs is None):
        raise ValueError("Pass both `model` and `inputs` to draw attribution maps, or neither.")
    if model is not None:
        try:
            draw_attribution_picture(
                model, inputs, output_dir / ATTRIBUTION_PICTURE, card_data.scored_settings, tokenizer=tokenizer
            )
        except Exception as error:  # the card matters more than its picture: warn, then write the card without it
            logger.warning(
                "Could not draw the attribution picture (%s: %s); the card has none.", type(error).__name__, error
            )
    card = build_model_card(card_data, output_dir, template=template)
    path = output_dir / CARD_FILE
    card.save(path)
    logger.debug("Model card written to %s", path)
    return path
