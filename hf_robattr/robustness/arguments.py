"""``RobustnessArguments``: the command-line mirror of :class:`RobustnessConfig` for ``HfArgumentParser``.

Its fields are generated from the config's fields, prefixed ``robustness_``, with the config's defaults and help
texts (``%`` escaped for argparse here, the one place they reach it), so nothing is written twice. Types the parser cannot read are mapped to ones it can: ``k`` is a float (a
value >= 1 is a count), ``method_kwargs`` a JSON object string, the name tuples and ``input_range`` lists.
Validation runs in ``__post_init__``, so a bad ``--robustness_attack top_k`` fails when the flags are parsed, before
any training starts.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from typing import Any, Optional

from hf_robattr.attribution.methods import ATTRIBUTION_METHODS

from .attacks import ATTACKS
from .config import MAP_POOLINGS, RobustnessConfig, default_value
from .measures import MEASURES
from .perturbations import NORMS, SPECIAL_TOKEN_MODES


PREFIX = "robustness_"

# Config field -> (type the parser reads, extra argparse options).
_PARSE_TYPES: dict[str, tuple[Any, dict[str, Any]]] = {
    "methods": (list[str], {"choices": sorted(ATTRIBUTION_METHODS)}),
    "measures": (Optional[list[str]], {"choices": list(MEASURES)}),  # noqa: UP045 (HfArgumentParser reads Optional)
    "attack": (str, {"choices": sorted(ATTACKS)}),
    "norm": (str, {"choices": list(NORMS)}),
    "map_pooling": (str, {"choices": list(MAP_POOLINGS)}),
    "special_tokens": (str, {"choices": list(SPECIAL_TOKEN_MODES)}),
    "k": (float, {}),
    "epsilon": (Optional[str], {}),  # noqa: UP045 (a number, "auto", or unset: the modality's default)
    "input_range": (Optional[list[float]], {}),  # noqa: UP045
    "method_kwargs": (Optional[str], {}),  # noqa: UP045
}
_PLAIN_TYPES = {int: int, float: float, str: str, int | None: Optional[int], float | None: Optional[float]}  # noqa: UP045


def _parse_type(name: str, hint: Any) -> tuple[Any, dict[str, Any]]:
    if name in _PARSE_TYPES:
        return _PARSE_TYPES[name]
    if hint in _PLAIN_TYPES:
        return _PLAIN_TYPES[hint], {}
    raise TypeError(f"RobustnessConfig.{name} has a type ({hint}) with no command-line form; add it to _PARSE_TYPES.")


def _cli_default(name: str) -> Any:
    value = default_value(name)
    if name == "method_kwargs":
        return json.dumps(value) if value else None
    return list(value) if isinstance(value, tuple) else value


def _fields() -> list[tuple[str, Any, dataclasses.Field]]:
    hints = typing.get_type_hints(RobustnessConfig)
    fields = []
    for item in dataclasses.fields(RobustnessConfig):
        parse_type, extra = _parse_type(item.name, hints[item.name])
        default = _cli_default(item.name)
        metadata = {**item.metadata, **extra}
        metadata["help"] = metadata["help"].replace("%", "%%")  # argparse formats help texts with %
        if isinstance(default, list):
            spec = dataclasses.field(default_factory=lambda default=default: list(default), metadata=metadata)
        else:
            spec = dataclasses.field(default=default, metadata=metadata)
        fields.append((PREFIX + item.name, parse_type, spec))
    return fields


# The generated fields; RobustnessArguments below adds the behaviour (a subclass keeps the fields and __init__, whose
# call of __post_init__ exists because the base declares one and resolves to the subclass's).
_RobustnessFlags = dataclasses.make_dataclass(
    "_RobustnessFlags", _fields(), namespace={"__post_init__": lambda self: None}
)


def _epsilon(value: Any) -> Any:
    """``--robustness_epsilon`` as given on the command line: a number, or ``auto``."""
    if not isinstance(value, str) or value.strip().lower() == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"`epsilon` must be a positive number or 'auto'; got {value!r}.") from None


class RobustnessArguments(_RobustnessFlags):
    """Command-line flags ``--robustness_<setting>`` for every :class:`RobustnessConfig` setting, for
    ``HfArgumentParser`` (also from a JSON file); validated when parsed, so a bad flag fails before any training.

    Example:
        >>> from transformers import HfArgumentParser
        >>> from hf_robattr import RobustnessArguments
        >>> (flags,) = HfArgumentParser(RobustnessArguments).parse_args_into_dataclasses(["--robustness_k", "5"])
        >>> flags.to_config().k
        5
    """

    def __post_init__(self) -> None:
        try:
            self.to_config()
        except (TypeError, ValueError) as error:
            message = str(error)
            for name in RobustnessConfig.field_names():
                message = re.sub(rf"`{name}(\W)", rf"`{PREFIX}{name}\1", message)
            raise type(error)(f"invalid robustness flag: {message}") from None

    def to_config(self) -> RobustnessConfig:
        """The :class:`RobustnessConfig` these flags describe (validated)."""
        values = {item.name[len(PREFIX) :]: getattr(self, item.name) for item in dataclasses.fields(self)}
        options = values.get("method_kwargs")
        if isinstance(options, str):
            try:
                values["method_kwargs"] = json.loads(options) if options.strip() else {}
            except json.JSONDecodeError as error:
                raise ValueError(
                    "`method_kwargs` must be a JSON object such as "
                    f'\'{{"integrated_gradients": {{"n_steps": 32}}}}\'; got {options!r} ({error}).'
                ) from None
        values["epsilon"] = _epsilon(values["epsilon"])
        return RobustnessConfig(**values)

    @classmethod
    def from_config(cls, config: RobustnessConfig) -> RobustnessArguments:
        """The flags that give ``config`` back with :meth:`to_config`."""
        values = {}
        for name in RobustnessConfig.field_names():
            value = getattr(config, name)
            if name == "method_kwargs":
                value = json.dumps(value) if value else None
            values[PREFIX + name] = list(value) if isinstance(value, tuple) else value
        return cls(**values)
