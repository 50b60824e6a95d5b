"""Checks shared by the argument dataclasses: every error names the flag, the bad value and what is allowed.

``HfArgumentParser`` converts command-line strings to the declared types, but a JSON file (``train_vit.py
args.json``) or a direct construction passes values as they are: :func:`check_types` catches ``"max_steps":
"four"`` before anything runs.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Collection
from typing import Any


__all__ = ["check_choice", "check_range", "check_types"]

_SIMPLE = (bool, int, float, str)


def check_choice(flag: str, value: Any, choices: Collection[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"Unknown {flag} {value!r}; expected one of {sorted(choices)}.")


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
