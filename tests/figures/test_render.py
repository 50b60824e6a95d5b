"""The one attribution renderer (card pictures and the demo)."""

import numpy as np
import pytest
import torch
from PIL import Image

from hf_robattr.figures import attribution_figure, figure_to_image, image_for_display, plot_attribution_maps


def test_image_rows_and_columns(tmp_path):
    figure = attribution_figure(
        torch.rand(2, 8, 8),
        torch.rand(2, 8, 8),
        images=torch.rand(2, 3, 8, 8),
        attacked_images=torch.rand(2, 3, 8, 8),
        row_labels=["a", "b"],
        title="t",
    )
    assert len(figure.axes) == 8
    assert [axis.get_title() for axis in figure.axes[:4]] == ["input", "clean map", "attacked input", "attacked map"]
    picture = figure_to_image(figure)
    assert isinstance(picture, Image.Image) and picture.mode == "RGB" and picture.size[0] > 400
    assert plot_attribution_maps(torch.rand(1, 4, 4), torch.rand(1, 4, 4), tmp_path / "m.png").stat().st_size > 500


def test_rows_of_different_sizes_and_text():
    # two models side by side: maps of different resolutions in one figure
    figure = attribution_figure([np.ones((4, 4)), np.ones((2, 2))], [np.zeros((4, 4)), np.zeros((2, 2))])
    assert len(figure.axes) == 4
    tokens = [["good", "film"], ["a", "very", "long", "sentence"] * 30]
    figure = attribution_figure(
        [np.array([1.0, 2.0]), np.arange(120.0)],
        [np.array([2.0, 1.0]), np.arange(120.0)[::-1].copy()],
        tokens=tokens,
        row_labels=["one", "two"],
    )
    drawn = [text.get_text() for text in figure.axes[0].texts]
    assert {"good", "film", "sentence", "clean", "attacked", "one", "two"} <= set(drawn)
    assert drawn.count("good") == 2  # once coloured by the clean map, once by the attacked one


@pytest.mark.parametrize(
    ("clean", "attacked", "kwargs", "message"),
    [
        pytest.param(torch.rand(2, 4, 4), torch.rand(2, 4, 5), {}, "same shape", id="shape"),
        pytest.param(torch.rand(2, 4, 4), torch.rand(3, 4, 4), {}, "2 examples", id="count"),
        pytest.param([], [], {}, "no example", id="empty"),
        pytest.param(torch.rand(4), torch.rand(4), {}, "batch", id="1d"),
        pytest.param(torch.rand(1, 2, 3, 4), torch.rand(1, 2, 3, 4), {}, "a map must be", id="4d"),
        pytest.param(torch.rand(1, 3), torch.rand(1, 3), {"tokens": [["a"]]}, "1 tokens", id="tokens"),
        pytest.param(torch.rand(2, 3), torch.rand(2, 3), {"row_labels": ["x"]}, "row_labels", id="labels"),
    ],
)
def test_bad_maps(clean, attacked, kwargs, message):
    with pytest.raises(ValueError, match=message):
        attribution_figure(clean, attacked, **kwargs)


def test_image_for_display():
    assert image_for_display(torch.full((3, 4, 4), 2.0)).max() == 0  # constant image: no division by zero
    shown = image_for_display(torch.arange(16.0).view(1, 4, 4))
    assert shown.shape == (4, 4) and shown.min() == 0 and shown.max() == 1
    assert image_for_display(np.zeros((5, 5, 3)) + np.arange(3)).shape == (5, 5, 3)
