"""Planted robustness: a model more robust than a given one *by construction*, for positive controls.

A robustness measure is only worth reading if it can tell a more robust model from a less robust one.
:class:`AttenuatedClassifier` wraps a classifier ``f`` and the clean inputs it will be scored on (the anchors ``c``):

    g(x) = f(c + s (x - c)),   c = the anchor nearest to x,  0 < s <= 1.

At every anchor ``g`` computes exactly what ``f`` does (its maps are ``f``'s, times ``s`` for gradient maps, which
no measure but local Lipschitz sees); a perturbation ``d`` of an anchor reaches ``f`` as ``s d``. So the attack on
``g`` in the ``epsilon`` ball *is* the attack on ``f`` in the ``s epsilon`` ball (the PGD steps, the sign of the
gradient and the projection are the same, scaled), and the random draws are ``f``'s draws shrunk by ``s``: every
attribution that depends on the input through the model only (saliency, attention maps) moves as ``f``'s would
under a perturbation ``s`` times smaller. Under that attack the worst case over the smaller ball is no worse, and the
random draws are smaller, so every measure must rank ``g`` at least as robust as ``f``: a measure that does not, by
more than its own noise, cannot be trusted to rank models. ``s = 1`` computes ``f`` itself (the negative control).

(Maps multiplied by the input, input x gradient and integrated gradients, get ``x`` instead of ``c + s d``; they
move a little more than ``f``'s would at ``s epsilon``, exactly so where the anchor is far from 0, e.g. embeddings.)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_robattr.attribution.argument_checks import is_real
from hf_robattr.attribution.inputs import IMAGE, prepare_inputs


def _check_factor(factor: float) -> float:
    if not is_real(factor) or not 0 < factor <= 1:
        raise ValueError(
            f"`factor` must be a number in (0, 1] (how much of a perturbation reaches the model); got {factor!r}."
        )
    return float(factor)


class AttenuatedClassifier(nn.Module):
    """``f(c + factor * (x - c))`` with ``c`` the nearest of the anchors: ``model`` with every perturbation of an
    anchor shrunk by ``factor`` (see the module docstring).

    Args:
        model: a transformers image or text classifier (its ``config``, input embeddings and attention outputs are
            passed through) or a plain module of pixel values.
        anchors: the clean inputs it will be scored on, as given to the scorer (pixel values, or a tokenized mapping
            whose texts are compared in embedding space, padding included).
        factor: the share of a perturbation that reaches ``model``, in (0, 1]; 1 gives ``model`` itself.

    Example:
        >>> import torch
        >>> from hf_robattr.robustness.controls import AttenuatedClassifier
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> x = torch.rand(4, 3, 2, 2)
        >>> control = AttenuatedClassifier(model, x, factor=0.5)
        >>> torch.allclose(control(x), model(x))
        True
    """

    def __init__(self, model: nn.Module, anchors: Any, *, factor: float = 0.5) -> None:
        super().__init__()
        self.model = model
        self.factor = _check_factor(factor)
        if hasattr(model, "config"):
            self.config = model.config
        prepared = prepare_inputs(model, anchors)
        self.kind, self.feature_key, self.positional = prepared.kind, prepared.feature_key, prepared.positional
        self.register_buffer("anchors", prepared.features.detach().clone(), persistent=False)

    def get_input_embeddings(self) -> nn.Module:
        """The wrapped model's input embeddings."""
        return self.model.get_input_embeddings()

    def set_attn_implementation(self, implementation: Any) -> None:
        """Passed to the wrapped model."""
        self.model.set_attn_implementation(implementation)

    def attenuate(self, features: torch.Tensor) -> torch.Tensor:
        """``c + factor * (features - c)`` with ``c`` each row's nearest anchor (of the same shape)."""
        anchors = self.anchors.to(features.dtype)
        if features.shape[1:] != anchors.shape[1:]:
            raise ValueError(
                f"AttenuatedClassifier was built on inputs of shape {tuple(anchors.shape[1:])}; got "
                f"{tuple(features.shape[1:])}. Score it on the anchors it was built with."
            )
        nearest = torch.cdist(features.detach().flatten(1), anchors.flatten(1)).argmin(dim=1)
        center = anchors[nearest]
        return center + self.factor * (features - center)

    def forward(self, *args: Any, **inputs: Any) -> Any:
        """The model on the attenuated inputs (pixel values, or input embeddings for text)."""
        if self.positional or args:
            return self.model(self.attenuate(args[0] if args else inputs.pop(self.feature_key)))
        if "input_ids" in inputs and inputs.get("inputs_embeds") is None:
            inputs["inputs_embeds"] = self.get_input_embeddings()(inputs.pop("input_ids"))
        key = "pixel_values" if self.kind == IMAGE else "inputs_embeds"
        inputs[key] = self.attenuate(inputs[key])
        output = self.model(**inputs)
        if isinstance(output, torch.Tensor):
            return output
        return SequenceClassifierOutput(logits=output.logits, attentions=getattr(output, "attentions", None))


__all__ = ["AttenuatedClassifier"]
