"""The one attribution renderer: clean and attacked maps, drawn the same way in model cards and in the demo.

Images get one row per example with the columns *input | clean map | attacked input | attacked map* (a map and its
attacked twin share one colour scale). Text gets one block per example: the tokens twice, coloured by the clean and
by the attacked attribution. Rows may differ in size (two models side by side in the demo), so every argument takes
either a batch tensor ``[N, ...]`` or a list of per-row arrays.

Figures are built with matplotlib's object API (no pyplot state), so rendering is safe from the demo's worker
threads.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


MAP_COLORMAP = "inferno"
TOKEN_COLORMAP = "Reds"
_IMAGE_CELL_INCHES = 2.2
_TEXT_LINE_CHARS = 96  # characters per line of a text block (monospace, so widths are exact)
_TEXT_FONT_SIZE = 9.0
_CHAR_WIDTH = 0.6  # DejaVu Sans Mono advance width, in units of the font size


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _rows(value: Any, name: str) -> list[np.ndarray] | None:
    """A batch tensor or a list of per-row arrays, as a list of float arrays (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [_as_array(row) for row in value]
    array = _as_array(value)
    if array.ndim < 2:
        raise ValueError(
            f"`{name}` must be a batch [N, ...] or a list of per-example arrays, got shape {array.shape}."
        )
    return list(array)


def image_for_display(image: np.ndarray) -> np.ndarray:
    """``[C, H, W]``, ``[H, W, C]`` or ``[H, W]`` to a displayable array scaled to [0, 1] (per image min/max)."""
    image = _as_array(image)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.transpose(image, (1, 2, 0))
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    low, high = float(np.nanmin(image)), float(np.nanmax(image))
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def _check(clean: list[np.ndarray], attacked: list[np.ndarray]) -> None:
    if len(clean) == 0:
        raise ValueError("`clean_maps` holds no example; nothing to draw.")
    if len(clean) != len(attacked):
        raise ValueError(f"`clean_maps` has {len(clean)} examples but `attacked_maps` has {len(attacked)}.")
    for row, (a, b) in enumerate(zip(clean, attacked)):
        if a.shape != b.shape:
            raise ValueError(
                f"example {row}: the clean map {tuple(a.shape)} and the attacked map {tuple(b.shape)} must have the "
                "same shape."
            )
        if a.ndim not in (1, 2):
            raise ValueError(
                f"example {row}: a map must be [H, W] (images) or [T] (text), got {tuple(a.shape)}; pass a batch "
                "[N, H, W] / [N, T] or a list of such maps."
            )


def attribution_figure(
    clean_maps: Any,
    attacked_maps: Any,
    *,
    images: Any = None,
    attacked_images: Any = None,
    tokens: Sequence[Sequence[str]] | None = None,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """Draw attribution maps of a few examples, clean beside attacked; returns a ``matplotlib.figure.Figure``.

    Args:
        clean_maps: ``[N, H, W]`` (images) or ``[N, T]`` (text) maps on the clean inputs, or a list of per-row maps.
        attacked_maps: the maps on the attacked inputs, same shapes.
        images: optional clean inputs (``[C, H, W]`` each), drawn in the first column.
        attacked_images: optional attacked inputs, drawn before the attacked map.
        tokens: for text maps, the tokens of each example (one per map entry; NaN entries are not drawn).
        row_labels: a caption per example (e.g. the model and its predictions), drawn beside or above the row.
        title: the figure title.
    """
    from matplotlib.figure import Figure

    clean, attacked = _rows(clean_maps, "clean_maps"), _rows(attacked_maps, "attacked_maps")
    _check(clean, attacked)
    if row_labels is not None and len(row_labels) != len(clean):
        raise ValueError(f"`row_labels` has {len(row_labels)} entries for {len(clean)} examples.")
    if clean[0].ndim == 2:
        figure = _image_rows(
            Figure, clean, attacked, _rows(images, "images"), _rows(attacked_images, "attacked_images"), row_labels
        )
    else:
        figure = _text_blocks(Figure, clean, attacked, tokens, row_labels)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def _image_rows(
    figure_class: Any,
    clean: list[np.ndarray],
    attacked: list[np.ndarray],
    images: list[np.ndarray] | None,
    attacked_images: list[np.ndarray] | None,
    row_labels: Sequence[str] | None,
) -> Any:
    columns: list[tuple[str, list[np.ndarray]]] = []
    if images is not None:
        columns.append(("input", images))
    columns.append(("clean map", clean))
    if attacked_images is not None:
        columns.append(("attacked input", attacked_images))
    columns.append(("attacked map", attacked))
    count = len(clean)
    figure = figure_class(
        figsize=(_IMAGE_CELL_INCHES * len(columns), _IMAGE_CELL_INCHES * count + 0.5), layout="constrained"
    )
    axes = figure.subplots(count, len(columns), squeeze=False)
    for row in range(count):
        # A map and its attacked twin share one colour scale, so their brightness compares.
        top = float(max(np.nanmax(np.abs(clean[row])), np.nanmax(np.abs(attacked[row])))) or 1.0
        for column, (name, data) in enumerate(columns):
            axis = axes[row][column]
            if name.endswith("input"):
                picture = image_for_display(data[row])
                axis.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0.0, vmax=1.0)
            else:
                axis.imshow(np.abs(data[row]), cmap=MAP_COLORMAP, vmin=0.0, vmax=top)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(name, fontsize=9)
        if row_labels is not None:
            axes[row][0].set_ylabel("\n".join(textwrap.wrap(row_labels[row], 28)), fontsize=8)
    return figure


def _token_lines(tokens: Sequence[str], values: np.ndarray, width: int) -> list[list[tuple[int, str, float]]]:
    """Greedy line breaking: ``[(column, token, value)]`` per line, tokens separated by one space."""
    lines: list[list[tuple[int, str, float]]] = [[]]
    column = 0
    for token, value in zip(tokens, values):
        if not np.isfinite(value):
            continue
        token = token if len(token) <= width else token[: width - 1] + "…"
        if column and column + len(token) > width:
            lines.append([])
            column = 0
        lines[-1].append((column, token, float(value)))
        column += len(token) + 1
    return lines


def _text_blocks(
    figure_class: Any,
    clean: list[np.ndarray],
    attacked: list[np.ndarray],
    tokens: Sequence[Sequence[str]] | None,
    row_labels: Sequence[str] | None,
) -> Any:
    from matplotlib import colormaps

    if tokens is None:
        tokens = [[str(position) for position in range(len(row))] for row in clean]
    if len(tokens) != len(clean):
        raise ValueError(f"`tokens` has {len(tokens)} rows for {len(clean)} examples.")
    label_chars = len("attacked ")
    width = _TEXT_LINE_CHARS - label_chars
    blocks = []  # (label, [(kind, lines)])
    for row in range(len(clean)):
        if len(tokens[row]) < len(clean[row]):
            raise ValueError(f"example {row}: {len(tokens[row])} tokens for a map of {len(clean[row])} entries.")
        top = float(max(np.nanmax(np.abs(clean[row])), np.nanmax(np.abs(attacked[row])))) or 1.0
        parts = [
            (kind, _token_lines(tokens[row], np.abs(values) / top, width))
            for kind, values in (("clean", clean[row]), ("attacked", attacked[row]))
        ]
        blocks.append((row_labels[row] if row_labels is not None else None, parts))
    total_lines = sum((1 if label else 0) + sum(len(lines) for _, lines in parts) + 1 for label, parts in blocks)
    line_inches = _TEXT_FONT_SIZE * 1.9 / 72
    char_inches = _TEXT_FONT_SIZE * _CHAR_WIDTH / 72
    figure = figure_class(figsize=(_TEXT_LINE_CHARS * char_inches + 0.4, total_lines * line_inches + 0.6))
    axis = figure.add_axes((0.02, 0.02, 0.96, 0.9))
    axis.set_xlim(0, _TEXT_LINE_CHARS)
    axis.set_ylim(total_lines, 0)
    axis.axis("off")
    colormap = colormaps[TOKEN_COLORMAP]
    line = 0.5
    for label, parts in blocks:
        if label:
            axis.text(0, line, label, fontsize=_TEXT_FONT_SIZE, fontweight="bold", va="center")
            line += 1
        for kind, lines in parts:
            axis.text(0, line, kind, fontsize=_TEXT_FONT_SIZE, family="monospace", va="center", color="0.35")
            for words in lines:
                for column, token, value in words:
                    axis.text(
                        label_chars + column,
                        line,
                        token,
                        fontsize=_TEXT_FONT_SIZE,
                        family="monospace",
                        va="center",
                        color="white" if value > 0.6 else "black",
                        bbox={
                            "boxstyle": "square,pad=0.15",
                            "facecolor": colormap(0.08 + 0.92 * value),
                            "edgecolor": "none",
                        },
                    )
                line += 1
        line += 1
    return figure


def save_figure(figure: Any, path: str | Path) -> Path:
    """Write ``figure`` as a PNG at ``path``."""
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path


def figure_to_image(figure: Any) -> Any:
    """``figure`` as a ``PIL.Image`` (RGB), e.g. for a Gradio image output."""
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def plot_attribution_maps(clean_maps: Any, attacked_maps: Any, path: str | Path, **figure_options: Any) -> Path:
    """Draw attribution maps with :func:`attribution_figure` and write them as a PNG at ``path``.

    Args:
        clean_maps: ``[N, H, W]`` (images) or ``[N, T]`` (text) maps on the clean inputs.
        attacked_maps: the maps on the attacked inputs, same shape.
        path: the PNG to write.
        **figure_options: :func:`attribution_figure`'s keyword arguments (``images``, ``attacked_images``,
            ``tokens``, ``row_labels``, ``title``).
    """
    return save_figure(attribution_figure(clean_maps, attacked_maps, **figure_options), path)
