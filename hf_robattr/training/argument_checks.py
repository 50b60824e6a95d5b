"""Checks shared by the argument dataclasses: every error names the flag, the bad value and what is allowed.
The checks every layer shares (:func:`check_choice`, re-exported here) live in ``attribution.argument_checks``.

``HfArgumentParser`` converts command-line strings to the declared types, but a JSON file (``train_vit.py
args.json``) or a direct construction passes values as they are: :func:`check_types` catches ``"max_steps":
"four"`` before anything runs.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from typing import Any

from hf_robattr.attribution import ATTENTION_METHODS
from hf_robattr.attribution.argument_checks import check_choice


__all__ = ["check_choice", "check_k_count", "check_range", "check_types", "ranked_features"]

_SIMPLE = (bool, int, float, str)


def check_range(
    flag: str,
    value: float | None,
    *,
    minimum: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> None:
    """Raise ``ValueError`` unless ``value`` (``None`` passes) is finite, ``>= minimum``, ``> above``, ``< below``."""
    if value is None:
        return
    bounds = [
        f">= {minimum}" if minimum is not None else "",
        f"> {above}" if above is not None else "",
        f"< {below}" if below is not None else "",
    ]
    wanted = " and ".join(bound for bound in bounds if bound)
    bad = (
        not math.isfinite(value)
        or (minimum is not None and value < minimum)
        or (above is not None and value <= above)
        or (below is not None and value >= below)
    )
    if bad:
        raise ValueError(f"{flag} must be {wanted}, got {value}.")


def _allowed_types(hint: Any) -> tuple[tuple[type, ...], bool] | None:
    """``(types, optional)`` for ``int``, ``float``, ``bool``, ``str`` and their ``X | None``; ``None`` otherwise
    (unions of enums and strings, dicts, lists: left to their own checks)."""
    if hint in _SIMPLE:
        return (hint,), False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(members) == 1 and members[0] in _SIMPLE and len(typing.get_args(hint)) == 2:
            return (members[0],), True
    return None


def _matches(value: Any, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, expected)


def check_types(arguments: Any) -> None:
    """Raise ``TypeError`` naming ``--<field>`` when a field declared ``int``/``float``/``bool``/``str`` (or
    ``X | None``) of the dataclass ``arguments`` holds a value of another type."""
    hints = typing.get_type_hints(type(arguments))
    for spec in dataclasses.fields(arguments):
        allowed = _allowed_types(hints.get(spec.name))
        if allowed is None or not spec.init:
            continue
        (expected,), optional = allowed
        value = getattr(arguments, spec.name)
        if (value is None and optional) or _matches(value, expected):
            continue
        wanted = f"{'an' if expected is int else 'a'} {expected.__name__}" + (" or null" if optional else "")
        raise TypeError(f"--{spec.name} must be {wanted}, got {value!r} ({type(value).__name__}).")


def ranked_features(
    methods: Sequence[str],
    *,
    image_size: int | None = None,
    patch_size: int | None = None,
    map_pooling: str = "none",
    max_seq_length: int | None = None,
) -> dict[str, int]:
    """The most features each attribution method's map can rank, which a top-k count must not exceed.

    Images (``image_size``, ``patch_size``): attention maps rank patches, gradient maps pixels (patches with
    ``map_pooling="patch"``). Text (``max_seq_length``): word tokens, never [CLS] or [SEP].
    """
    if max_seq_length is not None:
        return dict.fromkeys(methods, max(max_seq_length - 2, 1))
    if image_size is None or patch_size is None:
        raise ValueError("ranked_features needs image_size and patch_size (images) or max_seq_length (text).")
    patches = (image_size // patch_size) ** 2
    pixels = patches if map_pooling == "patch" else image_size**2
    return {method: patches if method in ATTENTION_METHODS else pixels for method in methods}


def check_k_count(k: int | float, features: dict[str, int], *, flag: str, why: str) -> None:
    """Refuse a top-k count ``k`` larger than what some method's map ranks (``features``, from
    :func:`ranked_features`; ``why`` says where the sizes come from); a fraction always fits."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        return
    over = {method: count for method, count in features.items() if k > count}
    if over:
        ranks = ", ".join(f"{method} ranks {count}" for method, count in over.items())
        raise ValueError(
            f"{flag} {k} asks for the top {k} features of each attribution map, but {ranks} ({why}). Pass a count "
            f"<= {min(over.values())} or a fraction in (0, 1), e.g. 0.1."
        )
