"""Attribution robustness: how much a model's attribution maps change under small input perturbations.

An ``evaluate`` module and a thin wrapper over ``hf_robattr.evaluate_attribution_robustness`` (the scoring core).
evaluate scans this file's imports line by line, so keep one absolute import per line.
"""

import datasets
import evaluate

import hf_robattr


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
the score is computed once on the main process (rank 0) and broadcast; every rank gets the same dict as a
single-process run. Unlike most evaluate metrics it takes a model and inputs, not predictions and references, so
add() and add_batch() are not supported: pass everything to compute().
"""

_KWARGS_DESCRIPTION = """
Computes attribution-robustness scores of a classifier.

Args:
    model (`torch.nn.Module`): the classifier: an hf_robattr ViT/BERT, a transformers image or text classifier
        (any model whose output has `.logits`), or a plain module mapping `pixel_values` to logits. DDP wrappers
        are unwrapped.
    inputs (`torch.Tensor`, mapping or `datasets.Dataset`): a float tensor of pixel values `[B, C, H, W]`; a tokenized batch (mapping with `input_ids` and
        `attention_mask`); a `datasets.Dataset` or iterable of such batches; or a `datasets.Dataset` of raw
        examples together with `image_processor` or `tokenizer`.
    targets (`torch.Tensor` of shape `[B]`, *optional*): class indices to attribute; default: the model's
        predictions.
    methods (`str` or sequence of `str`, default `("saliency",)`): attribution methods, several per call:
        "saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "raw_attention", "rollout",
        "grad_attention".
    attack (`str`, default `"topk"`): how x' is found: "random" (uniform samples in the ball), "topk",
        "mass_center" or "targeted" (PGD attacks on the attribution map).
    epsilon (`float`): radius of the perturbation ball, in input units (pixels after the processor's
        normalisation; for text, relative to the embedding norm). Must be > 0.
    norm (`str`, default `"linf"`): "linf" or "l2" ball.
    num_steps (`int`): PGD steps of an attack.
    step_size (`float`, *optional*): PGD step size; default derived from epsilon and num_steps.
    k (`int`): the size of the top-k set for the top-k attack and top-k intersection.
    restarts (`int`, default 1): attack restarts; the worst case per input is reported.
    num_samples (`int`): uniform samples per input for the random perturbation and the sensitivity family.
    seed (`int`, default 0): random seed; the same seed gives identical results.
    batch_size (`int`): inputs per batch.
    device (`str` or `torch.device`, *optional*): where to compute; default: the model's device.
    return_per_sample (`bool`, default False): also return the per-sample values (see the core's docs).
    image_processor (*optional*): with a `datasets.Dataset`: encodes `image_column` into `pixel_values`.
    tokenizer (*optional*): with a `datasets.Dataset`: encodes `text_column` (padded, truncated to `max_length`).
    image_column (`str`, *optional*): image column; default the first of "image", "img", "pixel_values".
    text_column (`str`, *optional*): text column; default the first of "text", "sentence", "content".
    label_column (`str`, *optional*): when given, its values are the targets.
    max_length (`int`, *optional*): tokenizer truncation length.

Returns:
    `dict[str, float]` with, for every requested method `{method}`:
        "{method}/topk_intersection": fraction of the clean top-k features still in the perturbed top-k, in [0, 1]
            (higher is more robust).
        "{method}/kendall_tau": Kendall rank correlation of clean and perturbed maps, in [-1, 1].
        "{method}/spearman": Spearman rank correlation, in [-1, 1].
        "{method}/pearson": Pearson correlation, in [-1, 1].
        "{method}/cosine": cosine similarity, in [-1, 1].
        "{method}/center_of_mass_shift": distance between the maps' centres of mass, in pixels (images only).
        "{method}/max_sensitivity": max over perturbations of ||a(x) - a(x')|| / ||a(x)|| (Yeh et al. 2019), >= 0
            (lower is more robust).
        "{method}/avg_sensitivity": the mean instead of the max, >= 0.
        "{method}/local_lipschitz": local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018), >= 0.
        "{method}/relative_input_stability": relative input stability (Agarwal et al. 2022), >= 0.
        "{method}/prediction_change_rate": fraction of perturbed inputs whose predicted label changed, in [0, 1].
    Similarity measures are means over inputs; where the core reports spreads they come as
    "{method}/{measure}_std". The exact set of measures is the core's; every key it returns is passed through.
        "num_samples": number of inputs scored.

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

    def compute(self, *, model=None, inputs=None, **options):
        """Score the robustness of ``model``'s attributions on ``inputs``; every option goes to the core.

        Returns the same dict on every process of a distributed run.
        """
        return self._compute(model=model, inputs=inputs, **options)

    def _compute(self, *, model=None, inputs=None, **options):
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
