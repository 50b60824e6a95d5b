"""``RobustnessConfig``: every attribution-robustness scoring setting, validated once, with one default each."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hf_robattr.attribution.argument_checks import (
    check_choice,
    check_int,
    check_names,
    check_number,
    check_optional_number,
    help_field,
    is_integer,
    is_real,
)
from hf_robattr.attribution.methods import ATTRIBUTION_METHODS, make_method

from .attacks import ATTACKS
from .measures import MEASURES
from .perturbations import NORMS, SPECIAL_TOKEN_MODES


MAP_POOLINGS = ("none", "patch")
# The radius an unset ``epsilon`` means, per input modality.
DEFAULT_EPSILONS: dict[str, float] = {"image": 8 / 255, "text": 0.01}


@dataclass(frozen=True, eq=True)
class RobustnessConfig:
    """Every setting of an attribution-robustness score: which maps, which perturbations, which measures.

    Frozen and validated on construction: a bad value raises ``ValueError`` (or ``TypeError`` for a wrong type)
    naming the field, the value and what is allowed. Numbers may be numpy scalars; booleans are refused where a
    number is expected. Round-trips through JSON (:meth:`to_json` / :meth:`from_json`, or :meth:`to_dict` /
    :meth:`from_dict`); :meth:`replace` returns a validated copy with some fields changed.

    Default ``epsilon`` (``None``): 8/255 for images, 0.01 for text (:meth:`resolved`; the scorer resolves it from the
    model). 8/255 is the field's standard L-inf budget for images (Ghorbani et al. 2019; Madry et al.
    2018), one grey level in 8 of the 0-255 range. Pixel values are absolute, so in the units the model sees: for a
    processor that maps [0, 1] to [-1, 1] (ViT's mean 0.5, std 0.5) it is half that budget in raw-pixel terms, and
    for a different normalisation (or for inputs already in [0, 1]) set it to match your data. For text, ``epsilon``
    is relative to each token's embedding norm (0.01: an RMS entry change of 1%); at 8/255 (3%) the attack removes
    the top word of a pretrained MiniLM's input x gradient and rollout maps in 96% of sentences, at the measures'
    floor. One default per modality for everyone; the recipes, the study and the cards read it from here.

    Example:
        >>> from hf_robattr import RobustnessConfig
        >>> config = RobustnessConfig(methods="saliency", epsilon=0.05, k=5)
        >>> config.methods, config.k
        (('saliency',), 5)
        >>> RobustnessConfig.from_json(config.to_json()) == config
        True
    """

    methods: tuple[str, ...] = help_field(
        f"Attribution methods to score (one or more of {sorted(ATTRIBUTION_METHODS)}).", ("saliency",)
    )
    measures: tuple[str, ...] | None = help_field(
        "Measures to compute (default: all; `center_of_mass_shift` only for images: naming it for text is an "
        f"error). One or more of {list(MEASURES)}.",
        None,
    )
    attack: str = help_field(
        "How the perturbed input is found: `random` (uniform draws from the ball) or a PGD attack on the "
        f"attribution map (`topk`, `mass_center`, `targeted`). One of {sorted(ATTACKS)}.",
        "topk",
    )
    epsilon: float | str | None = help_field(
        "Radius of the perturbation ball (> 0): absolute for pixel values, relative to each token's embedding "
        "norm for text. Default (None): 8/255 for pixel values (the standard L-inf image budget), 0.01 for text "
        "(a 1% change of each word's embedding, RMS; 8/255 puts attacked top-k sets of a pretrained MiniLM at "
        "their floor). 'auto': calibrated to the model and data "
        "(the smallest radius at which uniform noise moves the median map by 5% of its norm; see "
        "hf_robattr.robustness.calibration).",
        None,
    )
    norm: str = help_field(f"Norm of the perturbation ball: one of {list(NORMS)}.", "linf")
    num_steps: int = help_field("PGD steps of an attack (>= 1).", 10)
    step_size: float | None = help_field(
        "PGD step length, in the units of `epsilon` (> 0; default 2.5 * epsilon / num_steps).", None
    )
    restarts: int = help_field("Attack restarts from random starts (>= 1); the worst case is scored.", 1)
    k: int | float = help_field(
        "Top-k size for `topk_intersection` and the top-k/targeted attacks: a fraction of the map's features "
        "in (0, 1) (text: of its word tokens, at least 1), or a count >= 1 (an integer; a count larger than a "
        "text's word tokens is cut to their number).",
        0.1,
    )
    special_tokens: str = help_field(
        "Text only: `exclude` ranks, perturbs and measures the word tokens only ([CLS], [SEP], <s>, </s>, padding "
        "and the tokenizer's other special tokens are left out; a text without a word is skipped); `include` "
        f"treats every real token as a word (the behaviour before this setting). One of {list(SPECIAL_TOKEN_MODES)}.",
        "exclude",
    )
    num_samples: int = help_field("Uniform draws per example for the sensitivity measures (>= 1).", 10)
    batch_size: int = help_field("Examples per forward pass, perturbed copies included (>= 1).", 32)
    input_range: tuple[float, float] | None = help_field(
        "Valid (low, high) of pixel values; perturbed images are clamped into it (default: each image's own "
        "min/max). Ignored for text.",
        None,
    )
    method_kwargs: Mapping[str, Mapping[str, Any]] = help_field(
        'Options per method, e.g. {"integrated_gradients": {"n_steps": 32}} (a JSON object on the command '
        "line); every key must be one of `methods`.",
        default_factory=dict,
    )
    smoothing_beta: float | None = help_field(
        "Explain with every ReLU replaced by softplus_beta (Dombrowski et al. 2019); > 0.", None
    )
    map_pooling: str = help_field(
        "`patch`: image maps at pixel resolution are summed (|a|) over each ViT patch (the model's "
        "`config.patch_size`) before the similarity measures, so that gradient and attention maps are compared "
        f"on the same grid and k means the same; the attack still works on the pixel map. One of {list(MAP_POOLINGS)}.",
        "none",
    )
    seed: int = help_field("Seeds every random draw (>= 0); the same seed, the same numbers.", 0)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "methods", check_names("methods", self.methods, ATTRIBUTION_METHODS))
        if self.measures is not None:
            set_(self, "measures", check_names("measures", self.measures, MEASURES))
        set_(self, "attack", check_choice("attack", self.attack, ATTACKS))
        set_(self, "epsilon", _check_epsilon(self.epsilon))
        set_(self, "norm", check_choice("norm", self.norm, NORMS))
        set_(self, "num_steps", check_int("num_steps", self.num_steps, minimum=1))
        set_(self, "step_size", check_optional_number("step_size", self.step_size, positive=True))
        set_(self, "restarts", check_int("restarts", self.restarts, minimum=1))
        set_(self, "k", _check_k(self.k))
        set_(self, "special_tokens", check_choice("special_tokens", self.special_tokens, SPECIAL_TOKEN_MODES))
        set_(self, "num_samples", check_int("num_samples", self.num_samples, minimum=1))
        set_(self, "batch_size", check_int("batch_size", self.batch_size, minimum=1))
        set_(self, "input_range", _check_input_range(self.input_range))
        set_(self, "method_kwargs", _check_method_kwargs(self.method_kwargs, self.methods))
        set_(self, "smoothing_beta", check_optional_number("smoothing_beta", self.smoothing_beta, positive=True))
        set_(self, "map_pooling", check_choice("map_pooling", self.map_pooling, MAP_POOLINGS))
        set_(self, "seed", check_int("seed", self.seed, minimum=0))

    def __hash__(self) -> int:
        return hash(repr(self))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of the settings."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def check_field_names(cls, names: Any, argument: str = "option") -> None:
        """Raise ``TypeError`` listing the valid settings if ``names`` holds one that is not a setting."""
        unknown = sorted(set(names) - set(cls.field_names()))
        if unknown:
            raise TypeError(
                f"unknown robustness {argument}(s) {unknown}; the settings are {sorted(cls.field_names())}."
            )

    def resolved(self, modality: str) -> RobustnessConfig:
        """The config with the default radius (``epsilon=None``) made explicit for ``modality`` (``"image"`` or
        ``"text"``, see :data:`DEFAULT_EPSILONS`); other settings unchanged."""
        if modality not in DEFAULT_EPSILONS:
            raise ValueError(f"unknown modality {modality!r}; expected one of {sorted(DEFAULT_EPSILONS)}.")
        return self if self.epsilon is not None else self.replace(epsilon=DEFAULT_EPSILONS[modality])

    def replace(self, **changes: Any) -> RobustnessConfig:
        """A validated copy with ``changes`` applied (unknown names raise ``TypeError`` listing the settings)."""
        self.check_field_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (tuples become lists)."""
        values = {name: getattr(self, name) for name in self.field_names()}
        values["method_kwargs"] = {name: dict(options) for name, options in self.method_kwargs.items()}
        return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RobustnessConfig:
        """A config from :meth:`to_dict`'s output (lists come back as tuples); unknown keys raise ``TypeError``."""
        if not isinstance(values, Mapping):
            raise TypeError(f"a robustness config must be a mapping of settings; got {type(values).__name__}.")
        cls.check_field_names(values, "setting")
        return cls(**values)

    def to_json(self, **dump_kwargs: Any) -> str:
        """The settings as a JSON string; ``ValueError`` if ``method_kwargs`` holds something JSON cannot store."""
        try:
            return json.dumps(self.to_dict(), allow_nan=False, **dump_kwargs)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"this RobustnessConfig cannot be written as JSON ({error}); `method_kwargs` must then hold only "
                "numbers, strings, booleans, lists and dicts (no tensors)."
            ) from error

    @classmethod
    def from_json(cls, text: str) -> RobustnessConfig:
        """The config written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_options(
        cls, config: RobustnessConfig | Mapping[str, Any] | None = None, **overrides: Any
    ) -> RobustnessConfig:
        """``config`` (a config, a dict of settings or ``None`` for the defaults) with keyword ``overrides``: how
        entry points turn their keyword arguments into one config."""
        if config is None:
            base = cls()
        elif isinstance(config, RobustnessConfig):
            base = config
        elif isinstance(config, Mapping):
            base = cls.from_dict(config)
        else:
            raise TypeError(
                f"`config` must be a RobustnessConfig, a dict of its settings or None; got {type(config).__name__}."
            )
        return base.replace(**overrides) if overrides else base


def default_value(name: str) -> Any:
    """The default of setting ``name`` (the single place each default is defined)."""
    for item in dataclasses.fields(RobustnessConfig):
        if item.name == name:
            return item.default_factory() if item.default is dataclasses.MISSING else item.default
    raise KeyError(name)


def _check_epsilon(value: Any) -> float | str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        raise TypeError(f"`epsilon` must be a positive number, 'auto' or None; got the string {value!r}.")
    return check_number("epsilon", value, positive=True)


def _check_k(value: Any) -> int | float:
    if is_integer(value):
        return check_int("k", value, minimum=1)
    if not is_real(value):
        raise TypeError(f"`k` must be a count (integer >= 1) or a fraction in (0, 1); got {value!r}.")
    number = float(value)
    if 0 < number < 1:
        return number
    if math.isfinite(number) and number >= 1 and number.is_integer():
        return int(number)
    raise ValueError(f"`k` must be a count (integer >= 1) or a fraction in (0, 1); got {value!r}.")


def _check_input_range(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"`input_range` must be a pair (low, high) of finite numbers with low < high; got {value!r}.")
    low, high = (check_number("input_range", bound) for bound in value)
    if not low < high:
        raise ValueError(f"`input_range` must be (low, high) with low < high; got {value!r}.")
    return (low, high)


def _check_method_kwargs(value: Any, methods: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            '`method_kwargs` must map method names to their options, e.g. {"integrated_gradients": {"n_steps": '
            f"32}}}}; got {type(value).__name__}."
        )
    stray = sorted(set(value) - set(methods))
    if stray:
        raise ValueError(f"`method_kwargs` names methods that are not in `methods` ({list(methods)}): {stray}.")
    checked = {}
    for name, options in value.items():
        if not isinstance(options, Mapping):
            raise TypeError(f"`method_kwargs[{name!r}]` must be a mapping of options; got {type(options).__name__}.")
        make_method(name, **options)  # validates the option names and values
        checked[name] = dict(options)
    return checked
