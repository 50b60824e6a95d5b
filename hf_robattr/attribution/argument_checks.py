"""Checks of user arguments that name the argument, the bad value and what is allowed: the one home of the one
module of argument checks, for keyword arguments and command-line flags alike (:func:`check_range` and
:func:`check_types` serve the recipes' argument dataclasses), and of :func:`help_field`, the dataclass field with a
``--help`` text.

``HfArgumentParser`` converts command-line strings to the declared types, but a JSON file (``train_vit.py
args.json``) or a direct construction passes values as they are: :func:`check_types` catches ``"max_steps":
"four"`` before anything runs.

Numbers may be Python or numpy scalars (``np.float32(0.1)``, ``np.int64(5)``); ``bool`` is never a number here
(``epsilon=True`` is a mistake, not ``1.0``). Every check returns the value as a plain Python ``int`` / ``float``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import torch


def help_field(text: str, default: Any = None, **kwargs: Any) -> Any:
    """A dataclass ``field`` whose ``help`` metadata ``HfArgumentParser`` shows under ``--help``; ``default`` is
    ignored when ``default_factory`` is given."""
    if "default_factory" not in kwargs:
        kwargs["default"] = default
    return dataclasses.field(metadata={"help": text}, **kwargs)


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (Python or numpy, integer or float), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """``value`` as an ``int``; raise ``TypeError`` for a non-integer, ``ValueError`` below ``minimum``."""
    if not is_integer(value):
        raise TypeError(f"`{name}` must be an integer{_bound(minimum, '>=')}; got {value!r} ({type(value).__name__}).")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_number(
    name: str, value: Any, *, positive: bool = False, non_negative: bool = False, finite: bool = True
) -> float:
    """``value`` as a ``float``; raise ``TypeError`` for a non-number, ``ValueError`` for NaN, infinity (with
    ``finite``), a value <= 0 (with ``positive``) or < 0 (with ``non_negative``)."""
    wanted = "a finite number" if finite else "a number"
    wanted += " > 0" if positive else " >= 0" if non_negative else ""
    if not is_real(value):
        raise TypeError(f"`{name}` must be {wanted}; got {value!r} ({type(value).__name__}).")
    number = float(value)
    if math.isnan(number) or (finite and math.isinf(number)):
        raise ValueError(f"`{name}` must be {wanted}; got {number!r}.")
    if (positive and not number > 0) or (non_negative and not number >= 0):
        raise ValueError(f"`{name}` must be {wanted}; got {number!r}.")
    return number


def check_optional_number(name: str, value: Any, **kwargs: bool) -> float | None:
    """``None``, or ``value`` checked by :func:`check_number`."""
    return None if value is None else check_number(name, value, **kwargs)


def check_choice(name: str, value: Any, allowed: Collection[str]) -> str:
    """``value`` if it is one of ``allowed``; else ``ValueError`` (or ``TypeError`` for a non-string) listing them.

    ``name`` is what the user wrote: a keyword (``"attack"``) or a command-line flag (``"--optimizer"``).
    """
    label = name if name.startswith("--") else f"`{name}`"
    if not isinstance(value, str):
        raise TypeError(f"{label} must be one of {sorted(allowed)}; got {value!r} ({type(value).__name__}).")
    if value not in allowed:
        raise ValueError(f"unknown {label} {value!r}; expected one of {sorted(allowed)}.")
    return value


def check_names(name: str, value: Any, allowed: Collection[str]) -> tuple[str, ...]:
    """A non-empty tuple of distinct names from ``allowed``; a single string means one name."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or isinstance(value, bytes):
        raise TypeError(
            f"`{name}` must be a name or a sequence of names from {sorted(allowed)}; got {value!r} "
            f"({type(value).__name__})."
        )
    names = tuple(value)
    if not names:
        raise ValueError(f"`{name}` is empty; name at least one of {sorted(allowed)}.")
    wrong_type = [item for item in names if not isinstance(item, str)]
    if wrong_type:
        raise TypeError(f"`{name}` must hold names (strings) from {sorted(allowed)}; got {wrong_type!r}.")
    unknown = [item for item in names if item not in allowed]
    if unknown:
        raise ValueError(f"unknown `{name}` {unknown}; expected names from {sorted(allowed)}.")
    repeated = sorted({item for item in names if names.count(item) > 1})
    if repeated:
        raise ValueError(f"`{name}` names {repeated} more than once; name each at most once.")
    return names


def check_targets(targets: Any) -> torch.Tensor | None:
    """``targets`` as a long tensor (``[N]``, or a 0-d tensor for one class for all), checked up front."""
    if targets is None:
        return None
    if is_integer(targets):
        value = torch.tensor(int(targets))
    elif isinstance(targets, torch.Tensor | np.ndarray):
        value = torch.as_tensor(targets)
        if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool or value.dim() > 1:
            raise TypeError(
                f"`targets` must hold class indices (integers) in a 1-D tensor; got a {value.dtype} tensor of shape "
                f"{tuple(value.shape)}."
            )
    elif isinstance(targets, Sequence) and not isinstance(targets, str | bytes):
        wrong = [item for item in targets if not is_integer(item)]
        if wrong:
            raise TypeError(f"`targets` must hold class indices (integers); got {wrong[:3]!r}.")
        value = torch.tensor([int(item) for item in targets], dtype=torch.long)
    else:
        raise TypeError(
            f"`targets` must be class indices: a 1-D integer tensor, a sequence of ints or one int; got {targets!r}."
        )
    value = value.long()
    if (value < 0).any():
        raise ValueError(f"`targets` must be class indices >= 0; got {value.tolist()}.")
    return value


def _bound(value: int | None, relation: str) -> str:
    return "" if value is None else f" {relation} {value}"


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
