"""Attribution robustness: how much a model's attribution maps change under small input perturbations.

An ``evaluate`` module and a thin wrapper over ``hf_robattr.evaluate_attribution_robustness`` (the scoring core).
evaluate scans this file's imports line by line, so keep one absolute import per line.
"""

import datasets
import evaluate

import hf_robattr


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

_CITATION = """\
@inproceedings{mehrpanah2026improving,
  title     = {Improving Adversarial Robustness of Attribution via Implicit Regularization},
  author    = {Mehrpanah, Amir and Gamba, Matteo and Azizpour, Hossein},
  booktitle = {International Conference on Machine Learning (ICML)},
  year      = {2026},
  eprint    = {2605.29983},
  archivePrefix = {arXiv}
}
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

_KWARGS_DESCRIPTION = """
Computes attribution-robustness scores of a classifier. Every argument except the dataset-encoding ones
(image_processor, tokenizer, image_column, text_column, label_column, max_length) goes unchanged to
hf_robattr.evaluate_attribution_robustness; defaults are the core's.

Args:
    model (`torch.nn.Module`): the classifier: an hf_robattr ViT/BERT, a transformers image or text classifier
        (any model whose output has `.logits`), or a plain module mapping `pixel_values` to logits. DDP wrappers
        are unwrapped. Its train/eval mode and `requires_grad` flags are restored afterwards.
    inputs (`torch.Tensor`, mapping or `datasets.Dataset`): pixel values `[N, C, H, W]`; a tokenized batch
        (mapping with `input_ids` and `attention_mask`); a `datasets.Dataset` with such columns (fixed length) or
        an iterable of such batches; or a `datasets.Dataset` of raw examples together with `image_processor` or
        `tokenizer`.
    config (`hf_robattr.RobustnessConfig` or `dict`, *optional*): all scoring settings in one validated object;
        the keyword arguments below (methods ... seed) override its fields.
    targets (`torch.Tensor` of shape `[N]`, *optional*): class indices to attribute; default: the model's
        predictions.
    methods (`str` or sequence of `str`, default `("saliency",)`): attribution methods, several per call:
        "saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "raw_attention", "rollout",
        "grad_attention".
    attack (`str`, default `"topk"`): how the perturbed input is found: "random" (uniform samples in the ball),
        "topk", "mass_center" or "targeted" (PGD attacks on the attribution map, Ghorbani et al. 2019).
    epsilon (`float`, default `8/255`): radius of the perturbation ball: absolute for pixels (in the units of the
        processed pixel values), relative to each token's embedding norm for text. Must be > 0.
    norm (`str`, default `"linf"`): "linf" or "l2" ball.
    num_steps (`int`, default 10): PGD steps of an attack.
    step_size (`float`, *optional*): PGD step length in units of epsilon; default 2.5 * epsilon / num_steps.
    k (`int` or `float`, default 0.1): top-k size for topk_intersection and the top-k attack: a count, or a
        fraction in (0, 1) of the map's features.
    restarts (`int`, default 1): attack restarts from random starts; the worst label-preserving result is scored.
    num_samples (`int`, default 10): uniform draws per example for the sensitivity family.
    seed (`int`, default 0): seeds every random draw; the same seed gives identical results.
    batch_size (`int`, default 32): examples per forward pass.
    device (`str` or `torch.device`, *optional*): where to compute; default: the model's device.
    return_per_sample (`bool`, default False): also return "per_sample": {key: [value per example]} (NaN marks
        an excluded example).
    measures (sequence of `str`, *optional*): a subset of the measures listed under Returns; default all.
    method_kwargs (`dict`, *optional*): options per method, e.g. {"integrated_gradients": {"n_steps": 32}}.
    smoothing_beta (`float`, *optional*): explain with every ReLU replaced by softplus_beta (Dombrowski et al.
        2019), a no-retraining baseline.
    input_range (`tuple[float, float]`, *optional*): the valid (low, high) pixel range attacks project into;
        default: each image's own min/max.
    target_region (`torch.Tensor`, *optional*): boolean map for the "targeted" attack; default: the clean map's k
        weakest features.
    progress (`bool`, default True): show a tqdm bar over batches.
    image_processor (*optional*): with a `datasets.Dataset`: encodes `image_column` into `pixel_values`.
    tokenizer (*optional*): with a `datasets.Dataset`: encodes `text_column` (padded, truncated to `max_length`).
    image_column (`str`, *optional*): image column; default the first of "image", "img", "pixel_values".
    text_column (`str`, *optional*): text column; default the first of "sentence", "text", "content", "review",
        "sentence1".
    label_column (`str`, *optional*): when given, its values are the targets.
    max_length (`int`, *optional*): tokenizer truncation length.

Returns:
    `dict` with, for every requested method `{method}` and measure, the mean over examples as a float and its
    standard deviation as "{method}/{measure}_std":
        "{method}/topk_intersection": fraction of the clean top-k features still in the attacked top-k, in [0, 1]
            (higher is more robust).
        "{method}/kendall_tau": Kendall rank correlation of the clean and attacked maps, in [-1, 1].
        "{method}/spearman": Spearman rank correlation, in [-1, 1].
        "{method}/pearson": Pearson correlation, in [-1, 1].
        "{method}/cosine": cosine similarity, in [-1, 1].
        "{method}/center_of_mass_shift": distance between the maps' centres of mass, in pixels (images only).
        "{method}/attack_sensitivity": ||a(x) - a(x')|| / ||a(x)|| for the attacked x', >= 0 (lower is more
            robust).
        "{method}/prediction_change_rate": fraction of examples for which the attack met a label-changing point,
            in [0, 1]; such examples are left out of the similarity measures.
        "{method}/max_sensitivity": max over `num_samples` uniform draws of ||a(x) - a(x')|| / ||a(x)|| (Yeh et
            al. 2019, as captum.metrics.sensitivity_max), >= 0.
        "{method}/avg_sensitivity": the mean instead of the max, >= 0.
        "{method}/local_lipschitz": local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018), >= 0.
        "{method}/relative_input_stability": relative input stability (Agarwal et al. 2022), >= 0.
        "num_samples": the number of examples scored.
        "per_sample": only with return_per_sample=True, the per-example values of every key above.

Examples:
    >>> import evaluate, torch, hf_robattr
    >>> metric = evaluate.load("attribution_robustness")
    >>> results = metric.compute(model=model, inputs=pixel_values, methods=["saliency", "rollout"],
    ...                          attack="topk", epsilon=8 / 255)
    >>> results["num_samples"]
    8
"""


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
            homepage="https://arxiv.org/abs/2605.29983",
            license="apache-2.0",
            reference_urls=[
                "https://arxiv.org/abs/2605.29983",
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

        Settings not given here come from the instance's defaults (those given to ``evaluate.load``); a
        ``config=`` passed here replaces them. Under torch.distributed every rank scores its shard of the examples
        and returns the same dict.
        """
        return self._compute(model=model, inputs=inputs, **options)

    def _compute(self, *, model=None, inputs=None, **options):
        options.setdefault("config", self.robustness_config)
        return hf_robattr.metrics.compute_attribution_robustness(model, inputs, **options)

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
