"""Attribution robustness: how much a model's attribution maps change under small input perturbations.

An ``evaluate`` module and a thin wrapper over ``hf_robattr.evaluate_attribution_robustness`` (the scoring core).
evaluate scans this file's imports line by line, so keep one absolute import per line.
"""

import inspect

import datasets
import evaluate

import hf_robattr
import hf_robattr.metrics.compute
import hf_robattr.paper


# Keyword arguments of ``evaluate.load`` that evaluate's module takes itself (the others are scoring settings).
_MODULE_OPTIONS = (
    "keep_in_memory",
    "cache_dir",
    "num_process",
    "process_id",
    "seed",
    "experiment_id",
    "hash",
    "max_concurrent_cache_files",
    "timeout",
)

# The paper, then the works its protocol and measures come from.
_CITATION = (
    hf_robattr.paper.PAPER_BIBTEX
    + """
@inproceedings{ghorbani2019interpretation,
  title     = {Interpretation of Neural Networks Is Fragile},
  author    = {Ghorbani, Amirata and Abid, Abubakar and Zou, James},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  volume    = {33},
  pages     = {3681--3688},
  year      = {2019}
}
@inproceedings{chen2019robust,
  title     = {Robust Attribution Regularization},
  author    = {Chen, Jiefeng and Wu, Xi and Rastogi, Vaibhav and Liang, Yingyu and Jha, Somesh},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2019}
}
@inproceedings{yeh2019fidelity,
  title     = {On the (In)fidelity and Sensitivity of Explanations},
  author    = {Yeh, Chih-Kuan and Hsieh, Cheng-Yu and Suggala, Arun and Inouye, David I. and Ravikumar, Pradeep},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2019}
}
"""
)

_DESCRIPTION = """\
Attribution robustness measures how stable a classifier's attribution maps (saliency, input x gradient,
integrated gradients, SmoothGrad, raw attention, attention rollout, gradient-weighted attention) are under small
input perturbations that keep the predicted label. For each input x it finds x' in an L-inf or L2 ball of radius
epsilon, by uniform sampling (attack="random") or by a PGD attack on the map itself (Ghorbani et al. 2019:
"topk", "mass_center", "targeted"), keeps the worst case over restarts, and compares a(x) with a(x'): top-k
intersection, rank correlations (Kendall tau, Spearman rho), Pearson and cosine similarity, centre-of-mass shift,
and the sensitivity family (max/avg sensitivity, local Lipschitz estimate, relative input stability). Inputs whose
label flips are excluded from the similarity measures and counted in prediction_change_rate. Text models are
perturbed in embedding space.

The module is a thin wrapper over hf_robattr.evaluate_attribution_robustness: every option is passed through
unchanged, so the same arguments give the same numbers. Under torch.distributed (accelerate launch, torchrun)
every process scores its own shard of the examples and every process gets the same dict, equal to a
single-process run. Unlike most evaluate metrics it takes a model and inputs, not predictions and references, so
add() and add_batch() are not supported: pass everything to compute().
"""


def _settings_doc():
    """The Args entries of every RobustnessConfig setting, from the config's own types, defaults and help."""
    config_class = hf_robattr.robustness.RobustnessConfig
    lines = []
    for field in config_class.__dataclass_fields__.values():
        default = hf_robattr.robustness.config.default_value(field.name)
        shown = f"{default:.4g}" if isinstance(default, float) else repr(default)
        lines.append(f"    {field.name} (`{field.type}`, default `{shown}`): {field.metadata['help']}")
    return "\n".join(lines)


_KWARGS_DESCRIPTION = (
    """
Computes attribution-robustness scores of a classifier. Every argument except the dataset-encoding ones
(image_processor, tokenizer, image_column, text_column, label_column, max_length) goes unchanged to
hf_robattr.evaluate_attribution_robustness. Settings not given here come from the instance's defaults: those
passed to evaluate.load("attribution_robustness", ...) (validated at load), else RobustnessConfig's. An argument
passed as None counts as not given (config=None too: the load-time settings still apply).

Args:
    model (`torch.nn.Module`): the classifier: an hf_robattr ViT/BERT, a transformers image or text classifier
        (any model whose output has `.logits`), or a plain module mapping `pixel_values` to logits. DDP wrappers
        are unwrapped. Its train/eval mode and `requires_grad` flags are restored afterwards.
    inputs (`torch.Tensor`, mapping or `datasets.Dataset`): pixel values `[N, C, H, W]`; a tokenized batch
        (mapping with `input_ids` and `attention_mask`); a `datasets.Dataset` with such columns or an iterable of
        such batches; or a `datasets.Dataset` of raw examples together with `image_processor` or `tokenizer`.
    config (`hf_robattr.RobustnessConfig` or `dict`, *optional*): all scoring settings in one validated object;
        it replaces the instance's defaults (None: keep them), and the settings below override its fields.
    targets (`torch.Tensor` of shape `[N]`, *optional*): class indices to attribute; default: the model's
        predictions.
    target_region (`torch.Tensor`, *optional*): boolean map for the "targeted" attack; default: the clean map's k
        weakest features.
    device (`str` or `torch.device`, *optional*): where to compute; default: the model's device.
    return_per_sample (`bool`, default False): also return "per_sample": {key: [value per example]} (NaN marks
        an excluded example).
    progress (`bool`, default True): show a tqdm bar over batches.
"""
    + _settings_doc()
    + """
    image_processor (*optional*): with a `datasets.Dataset`: encodes `image_column` into `pixel_values`.
    tokenizer (*optional*): with a `datasets.Dataset`: encodes `text_column` (padded, truncated to `max_length`;
        never longer than the model's position table).
    image_column (`str`, *optional*): image column; default the first of "image", "img", "pixel_values".
    text_column (`str`, *optional*): text column; default the first of "sentence", "text", "content", "review",
        "sentence1".
    label_column (`str`, *optional*): when given, its values are the targets.
    max_length (`int`, *optional*): tokenizer truncation length (>= 1); default the tokenizer's `model_max_length`,
        capped at what the model embeds: `config.max_position_embeddings`, less RoBERTa's `padding_idx + 1`.

Returns:
    `dict` with, for every requested method `{method}` and measure, the mean over examples as a float and its
    standard deviation as "{method}/{measure}_std":
        "{method}/topk_intersection": fraction of the clean top-k features still in the attacked top-k, in [0, 1]
            (higher is more robust).
        "{method}/kendall_tau": Kendall rank correlation of the clean and attacked maps, in [-1, 1] (higher is
            more robust).
        "{method}/spearman": Spearman rank correlation, in [-1, 1] (higher is more robust).
        "{method}/pearson": Pearson correlation, in [-1, 1] (higher is more robust).
        "{method}/cosine": cosine similarity, in [-1, 1] (higher is more robust).
        "{method}/center_of_mass_shift": distance between the maps' centres of mass, in map cells (images only),
            >= 0 (lower is more robust).
        "{method}/attack_sensitivity": ||a(x) - a(x')|| / ||a(x)|| for the attacked x', >= 0 (lower is more
            robust).
        "{method}/prediction_change_rate": fraction of examples for which the attack met a label-changing point,
            in [0, 1]; such examples are left out of the similarity measures.
        "{method}/max_sensitivity": max over `num_samples` uniform draws of ||a(x) - a(x')|| / ||a(x)|| (Yeh et
            al. 2019, as captum.metrics.sensitivity_max), >= 0 (lower is more robust).
        "{method}/avg_sensitivity": the mean instead of the max, >= 0 (lower is more robust).
        "{method}/local_lipschitz": local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018), >= 0 (lower is more
            robust).
        "{method}/relative_input_stability": relative input stability (Agarwal et al. 2022), >= 0 (lower is more
            robust).
        "num_samples": the number of examples given.
        "num_skipped", "{method}/num_skipped": examples left out (they cannot be perturbed, or their clean map is
            all zeros); a method with none left raises ValueError.
        "per_sample": only with return_per_sample=True, the per-example values of every key above (and of the
            baselines, as "{method}/{measure}@chance" and "@noise").
    and three nested entries (not floats: flatten or drop them before logging the dict to a tracker):
        "saturated": {"{method}/{measure}": {"kind", "examples", "scored", "mean", "baseline", "why", "judged"}}
            for each measure at its ceiling or floor, or no better than random noise: read it as untested ({} when
            none).
        "baselines": {"{method}/{measure}": {"chance": float, "noise": float}}, the means it is compared with.
        "epsilon_calibration": only with epsilon="auto", the chosen radius and its rule.

Examples:
    >>> import torch
    >>> import evaluate
    >>> import hf_robattr
    >>> from transformers import ViTConfig, ViTForImageClassification
    >>> _ = torch.manual_seed(0)
    >>> config = ViTConfig(image_size=8, patch_size=4, hidden_size=16, num_hidden_layers=1,
    ...                    num_attention_heads=2, intermediate_size=32, num_labels=3)
    >>> model = ViTForImageClassification(config)
    >>> pixel_values = torch.rand(4, 3, 8, 8)
    >>> metric = evaluate.load("attribution_robustness", epsilon=0.05, num_steps=2, num_samples=2)
    >>> results = metric.compute(model=model, inputs=pixel_values, methods=["saliency", "rollout"],
    ...                          progress=False)
    >>> results["num_samples"], results["num_skipped"]
    (4.0, 0.0)
    >>> 0.0 <= results["saliency/topk_intersection"] <= 1.0
    True
    >>> sorted(key for key in results if key.startswith("rollout/") and not key.endswith("_std"))[:3]
    ['rollout/attack_sensitivity', 'rollout/avg_sensitivity', 'rollout/center_of_mass_shift']
"""
)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AttributionRobustness(evaluate.Metric):
    """The ``attribution_robustness`` metric: ``compute(model=..., inputs=..., **options)``."""

    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({}),
            homepage=hf_robattr.paper.PAPER_URL,
            license="apache-2.0",
            reference_urls=[
                hf_robattr.paper.PAPER_URL,
                "https://arxiv.org/abs/1710.10547",
                "https://arxiv.org/abs/1905.09957",
            ],
        )

    def __init__(self, config_name=None, **kwargs):
        """Settings given at load time, ``evaluate.load("attribution_robustness", epsilon=0.5, methods=[...])`` (or
        ``config=RobustnessConfig(...)``), become this instance's defaults for ``compute``; they are validated
        here. ``seed`` seeds both evaluate's module and the scores. Unknown keyword arguments raise ``TypeError``.
        """
        setting_names = ("config", *hf_robattr.robustness.RobustnessConfig.field_names())
        settings = {name: kwargs.pop(name) for name in list(kwargs) if name in setting_names}
        unknown = sorted(set(kwargs) - set(_MODULE_OPTIONS))
        if unknown:
            raise TypeError(
                f"attribution_robustness got unknown load option(s) {unknown}; scoring settings are "
                f"{sorted(setting_names)}, evaluate's own options {sorted(_MODULE_OPTIONS)}."
            )
        base = settings.pop("config", None)
        self.robustness_config = hf_robattr.robustness.RobustnessConfig.from_options(base, **settings)
        if "seed" in settings:
            kwargs["seed"] = self.robustness_config.seed
        super().__init__(config_name=config_name, **kwargs)

    def compute(self, *, model=None, inputs=None, **options):
        """Score the robustness of ``model``'s attributions on ``inputs``; every option goes to the core.

        Settings not given here, or given as ``None``, come from the instance's defaults (those given to
        ``evaluate.load``); a ``config=`` passed here replaces them. Under torch.distributed every rank scores its
        shard of the examples and returns the same dict.
        """
        return self._compute(model=model, inputs=inputs, **options)

    def _compute(self, *, model=None, inputs=None, **options):
        # ``config=None`` (evaluate's signature default) means "not given": the load-time settings apply.
        if options.get("config") is None:
            options["config"] = self.robustness_config
        return hf_robattr.metrics.compute_attribution_robustness(model, inputs, **options)

    # The options ``_compute`` accepts, spelled out (evaluate's module tests require no bare ``**kwargs``); any other
    # name raises TypeError listing these.
    _compute.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None)
            for name in (
                "model",
                "inputs",
                "config",
                "targets",
                "target_region",
                "device",
                "return_per_sample",
                "progress",
                *hf_robattr.robustness.RobustnessConfig.__dataclass_fields__,
                *hf_robattr.metrics.compute.ENCODING_OPTIONS,
            )
        ]
    )

    def add(self, **kwargs):
        """Not supported: this metric scores a model, pass ``model=`` and ``inputs=`` to ``compute``."""
        raise NotImplementedError(
            "attribution_robustness scores a model, not stored predictions: call "
            "`compute(model=model, inputs=inputs, **options)` instead of add()."
        )

    def add_batch(self, **kwargs):
        """Not supported: this metric scores a model, pass ``model=`` and ``inputs=`` to ``compute``."""
        raise NotImplementedError(
            "attribution_robustness scores a model, not stored predictions: call "
            "`compute(model=model, inputs=inputs, **options)` instead of add_batch()."
        )
