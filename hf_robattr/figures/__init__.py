"""hf_robattr.figures: the pictures the model cards and the demo share: clean and attacked attribution maps
(:mod:`.maps`), the rows of explained examples they are drawn from (:mod:`.explained`) and training curves
(:mod:`.curves`). Drawing only: matplotlib's object API, no pyplot state, so the demo's worker threads may render."""

from .curves import plot_training_curves
from .explained import FigureRows, figure_rows, rows_figure
from .maps import attribution_figure, figure_to_image, image_for_display, plot_attribution_maps, save_figure


__all__ = [
    "FigureRows",
    "attribution_figure",
    "figure_rows",
    "figure_to_image",
    "image_for_display",
    "plot_attribution_maps",
    "plot_training_curves",
    "rows_figure",
    "save_figure",
]
