"""The conversion recipe's labels: a data set's label column as the class ids of the classifier being converted."""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any

from datasets import ClassLabel, Dataset


__all__ = ["IGNORED_LABEL", "encode_labels"]

logger = logging.getLogger(__name__)

IGNORED_LABEL = -100  # an unscored example


def _label2id(config: Any) -> dict[str, int]:
    """The model's label names and class ids: its ``id2label`` inverted, then its ``label2id`` (a transformers 5
    config built from ``id2label`` alone has none)."""
    names = {str(name): int(index) for index, name in (getattr(config, "id2label", None) or {}).items()}
    return {**names, **{str(name): int(index) for name, index in (getattr(config, "label2id", None) or {}).items()}}


def _default_names(config: Any) -> bool:
    """Whether the model's labels are transformers' placeholders (``LABEL_0``, ``LABEL_1``, ...)."""
    id2label = getattr(config, "id2label", None) or {}
    return all(str(name) == f"LABEL_{index}" for index, name in id2label.items())


def _class_id(value: Any, where: str, label2id: dict[str, int], num_labels: int) -> int:
    if isinstance(value, str):
        if value not in label2id:
            raise ValueError(
                f"{where} has the label {value!r}, which the model does not know: its labels (the config's label2id) "
                f"are {sorted(label2id)}. Write the labels as class ids from 0 to {num_labels - 1}, or convert a "
                "model whose config names them."
            )
        return label2id[value]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"{where} has {value!r}; expected a class id (an integer from 0 to {num_labels - 1}) or one of the "
            f"model's label names {sorted(label2id)}."
        )
    if value != IGNORED_LABEL and not 0 <= value < num_labels:
        raise ValueError(
            f"{where} has the class id {value}, but the model has {num_labels} labels: expected 0 to {num_labels - 1}."
        )
    return int(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{where} has {value!r}; a one-output (regression) head needs a finite number.")
    return float(value)


def encode_labels(
    dataset: Dataset, column: str, model_config: Any, *, split: str, argument: str = "--label_column"
) -> list[int | float]:
    """The labels of ``dataset[column]`` (the ``split`` data) as the class ids of a model with ``model_config``.

    * label names (strings) map through the model's ``label2id``;
    * a ``ClassLabel`` column maps through its names when the model names the same labels (its ``label2id`` holds
      every name), and keeps its ids otherwise (a model with the placeholder names ``LABEL_i``); a missing value
      (``-1``) becomes -100 (unscored);
    * integers are kept, and must lie in ``[0, num_labels)``; a one-output (regression) head keeps numbers.

    Raises:
        ValueError: a label the model does not know, a class id outside ``[0, num_labels)``, or a value that is no
            label; the message names ``argument`` and the column, the example and what was expected.
    """
    feature = dataset.features[column]
    values = list(dataset[column])
    num_labels = model_config.num_labels
    where = [f"{argument} {column!r}: example {row} of the {split} data" for row in range(len(values))]
    if num_labels == 1:
        return [_number(value, where[row]) for row, value in enumerate(values)]
    label2id = _label2id(model_config)
    if isinstance(feature, ClassLabel):
        names = feature.names
        by_name = not _default_names(model_config) and all(name in label2id for name in names)
        if not by_name and not _default_names(model_config):
            logger.warning(
                "%s %r: the data's label names %s are not the model's %s; using the data's class ids as they are.",
                argument,
                column,
                names,
                sorted(label2id),
            )
        values = [
            IGNORED_LABEL if value is None or value < 0 else (names[value] if by_name else value) for value in values
        ]
    return [_class_id(value, where[row], label2id, num_labels) for row, value in enumerate(values)]
