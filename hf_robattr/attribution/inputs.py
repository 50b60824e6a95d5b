"""One view of image and text inputs: the differentiable features, the rest of the model kwargs, and the forward."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from .input_checks import (
    check_batch,
    check_finite,
    check_image_batch,
    check_modality,
    check_pixels,
    check_token_ids,
    check_token_length,
    check_token_shapes,
    padding_aware_numbering,
)
from .random_streams import ExampleStreams
from .special_tokens import (  # noqa: F401  (re-exported: their home was here)
    SPECIAL_TOKEN_ID_FIELDS,
    SPECIAL_TOKENS_MASK,
    padding_ids,
    special_token_ids,
    special_tokens,
)


IMAGE = "image"
TEXT = "text"

# Keys of a tokenized batch that are passed through to the model unchanged (all others are dropped).
_TEXT_PASSTHROUGH = ("attention_mask", "token_type_ids", "position_ids")


@dataclass(frozen=True)
class PreparedInputs:
    """Inputs ready for attribution.

    ``features`` is the tensor attributions are taken over: ``pixel_values`` ``[B, C, H, W]`` (or any ``[B, ...]``
    tensor for a plain module) for images, the word embeddings ``[B, T, D]`` for text. ``extra`` holds the other model
    kwargs (attention mask, token type ids, position ids). ``positional`` is true for plain modules that take the
    tensor as their only positional argument. ``streams`` (optional) gives every row its own random stream
    (:class:`ExampleStreams`); methods and perturbations that draw noise use it when present.

    Text has two ``[B, T]`` masks (``None`` for images): ``token_mask``, 1 for the real tokens (what the model attends
    to; 0 at padding), and ``word_mask``, 1 for the real tokens that are not special tokens ([CLS], [SEP], <s>, </s>,
    ...): the tokens that robustness scores rank and perturb (see :func:`prepare_inputs` for where it comes from). A
    text built without a ``word_mask`` counts every real token as a word. ``special_tokens_named`` is false for a text
    whose special tokens nothing names: no ``special_tokens_mask``, and either ``input_ids`` for which neither the
    model config nor a tokenizer saved with the model names a [CLS], [SEP], <s> or </s> id, or ``inputs_embeds`` for
    a model that has such ids (embeddings hold no ids to find them by). Its word mask may hold them.
    """

    features: torch.Tensor
    kind: str
    feature_key: str
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    token_mask: torch.Tensor | None = None
    positional: bool = False
    streams: ExampleStreams | None = None
    word_mask: torch.Tensor | None = None
    special_tokens_named: bool = True

    def __post_init__(self) -> None:
        if self.word_mask is None and self.token_mask is not None:
            object.__setattr__(self, "word_mask", self.token_mask)

    @property
    def batch_size(self) -> int:
        """Number of examples."""
        return self.features.shape[0]

    def with_features(self, features: torch.Tensor) -> PreparedInputs:
        """The same inputs with other feature values (e.g. perturbed) of the same shape."""
        return replace(self, features=features)

    def with_streams(self, streams: ExampleStreams | None) -> PreparedInputs:
        """The same inputs with one random stream per row (or none)."""
        if streams is not None and len(streams) != self.batch_size:
            raise ValueError(f"{len(streams)} random streams for a batch of {self.batch_size} examples.")
        return replace(self, streams=streams)

    def including_special_tokens(self) -> PreparedInputs:
        """The same inputs with every real token counted as a word (``word_mask = token_mask``)."""
        return replace(self, word_mask=self.token_mask)

    def words_only(self, maps: torch.Tensor) -> torch.Tensor:
        """``maps`` (``[B, T]`` or ``[B, S, T]`` for text) with every position that is not a word set to 0; image maps
        are returned as they are."""
        if self.word_mask is None:
            return maps
        mask = self.word_mask.to(maps.dtype)
        return maps * mask.view(mask.shape[0], *([1] * (maps.dim() - 2)), mask.shape[1])

    def _masks(self, change: Any) -> dict[str, torch.Tensor | None]:
        """``token_mask`` and ``word_mask`` passed through ``change`` (``None`` stays ``None``)."""
        masks = {"token_mask": self.token_mask, "word_mask": self.word_mask}
        return {name: None if value is None else change(value) for name, value in masks.items()}

    def repeat_interleave(self, repeats: int) -> PreparedInputs:
        """Each example repeated ``repeats`` times in a row (the layout captum uses for perturbation samples)."""
        extra = {key: value.repeat_interleave(repeats, dim=0) for key, value in self.extra.items()}
        masks = self._masks(lambda mask: mask.repeat_interleave(repeats, dim=0))
        streams = None if self.streams is None else self.streams.repeat_interleave(repeats)
        features = self.features.repeat_interleave(repeats, dim=0)
        return replace(self, features=features, extra=extra, streams=streams, **masks)

    def tile(self, repeats: int) -> PreparedInputs:
        """The whole batch repeated ``repeats`` times one after another (step-major layout)."""
        extra = {key: value.repeat(repeats, *([1] * (value.dim() - 1))) for key, value in self.extra.items()}
        masks = self._masks(lambda mask: mask.repeat(repeats, 1))
        features = self.features.repeat(repeats, *([1] * (self.features.dim() - 1)))
        streams = None if self.streams is None else self.streams.tile(repeats)
        return replace(self, features=features, extra=extra, streams=streams, **masks)

    def select(self, index: slice | torch.Tensor) -> PreparedInputs:
        """A sub-batch."""
        extra = {key: value[index] for key, value in self.extra.items()}
        masks = self._masks(lambda mask: mask[index])
        streams = None if self.streams is None else self.streams.select(index)
        return replace(self, features=self.features[index], extra=extra, streams=streams, **masks)

    def to(self, device: torch.device | str) -> PreparedInputs:
        """The same inputs on ``device``."""
        extra = {key: value.to(device) for key, value in self.extra.items()}
        masks = self._masks(lambda mask: mask.to(device))
        return replace(self, features=self.features.to(device), extra=extra, **masks)


def is_hf_model(model: nn.Module) -> bool:
    """Whether ``model`` is a transformers-style model (keyword inputs, ``config``, input embeddings); duck-typed so
    that any such model, ours included, qualifies."""
    return hasattr(model, "config") and hasattr(model, "get_input_embeddings")


def model_modality(model: nn.Module) -> str:
    """``"text"`` for a transformers model without image channels (it takes token embeddings), else ``"image"``
    (transformers image models, and plain modules of pixel values)."""
    model = unwrap_model(model)
    config = getattr(model, "config", None)
    if is_hf_model(model) and getattr(config, "num_channels", None) is None:
        return TEXT
    return IMAGE


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare module under DDP / DataParallel / ``torch.compile`` wrappers (a DDP forward on one rank alone would
    wait for the others)."""
    while isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
        model = model.module
    return getattr(model, "_orig_mod", model)


def prepare_inputs(model: nn.Module, inputs: torch.Tensor | Mapping[str, Any]) -> PreparedInputs:
    """Turn a pixel tensor or a tokenized batch into :class:`PreparedInputs` for ``model``.

    Text (a mapping with ``input_ids`` or ``inputs_embeds``) is moved into embedding space with the model's own input
    embedding layer (``get_input_embeddings()``; for ALBERT-style factorised embeddings, before the projection), so
    that attributions and perturbations act on embeddings. ``attention_mask``, ``token_type_ids`` and ``position_ids``
    go to the model where its ``forward`` takes them (DistilBERT has no token types). Models that number positions
    from the ids, skipping padding (RoBERTa's ``padding_idx``), get those ``position_ids`` computed from
    ``input_ids``, so the embedding path equals the ids path under any padding.

    The word mask (real tokens that are not special tokens) comes from, in this order: the batch's
    ``special_tokens_mask`` (``tokenizer(..., return_special_tokens_mask=True)``; 1 = special); else the ids in
    ``input_ids`` that the model config names (``cls_token_id``, ``sep_token_id``, ``bos_token_id``, ``eos_token_id``,
    ``pad_token_id``, where set), or, where it names none but padding (BERT-style configs), the special ids of the
    tokenizer saved with the model (``config.name_or_path``, read from local files only); else, for ``inputs_embeds``
    alone, every real token is a word (and ``special_tokens="exclude"`` warns when the model has special tokens: pass
    ``special_tokens_mask`` with the embeddings).

    Raises ``ValueError`` with the argument's name for NaN values, empty batches, mismatched batch sizes, a
    ``special_tokens_mask`` of the wrong shape or unknown layouts.
    """
    modality = model_modality(model) if is_hf_model(model) else None  # plain modules: any layout
    if isinstance(inputs, torch.Tensor):
        check_modality(model, modality, IMAGE, "inputs")
        check_batch(inputs, "inputs")
        check_image_batch(model, inputs, "inputs")
        check_pixels(inputs, "inputs")
        check_finite("inputs", inputs)
        return PreparedInputs(inputs, IMAGE, "pixel_values", positional=not is_hf_model(model))
    if not isinstance(inputs, Mapping):
        raise TypeError(
            f"`inputs` must be a tensor of pixel values or a mapping with `pixel_values`, `input_ids` or "
            f"`inputs_embeds`; got {type(inputs).__name__}."
        )
    tensors = {key: torch.as_tensor(value) for key, value in inputs.items() if key != "labels"}
    sizes = {key: value.shape[0] for key, value in tensors.items() if value.dim() > 0}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"`inputs` has mismatched batch sizes: {sizes}; every tensor needs the same first dimension.")
    if "pixel_values" in tensors:
        pixels = tensors["pixel_values"]
        check_modality(model, modality, IMAGE, "inputs")
        check_batch(pixels, "inputs['pixel_values']")
        check_image_batch(model, pixels, "inputs['pixel_values']")
        check_pixels(pixels, "inputs['pixel_values']")
        check_finite("inputs['pixel_values']", pixels)
        extra = {key: value for key, value in tensors.items() if key != "pixel_values"}
        positional = not extra and not is_hf_model(model)
        return PreparedInputs(pixels, IMAGE, "pixel_values", extra=extra, positional=positional)
    if "inputs_embeds" in tensors and "input_ids" in tensors:
        raise ValueError("`inputs` holds both `input_ids` and `inputs_embeds`; pass one of them.")
    if "inputs_embeds" in tensors or "input_ids" in tensors:
        check_modality(model, modality, TEXT, "inputs")
    if "inputs_embeds" in tensors:
        embeds = tensors["inputs_embeds"]
    elif "input_ids" in tensors:
        if not hasattr(model, "get_input_embeddings"):
            raise TypeError("`model` must provide `get_input_embeddings()` to attribute text given as `input_ids`.")
        table = model.get_input_embeddings()
        check_token_ids(tensors["input_ids"], getattr(table, "num_embeddings", None))
        check_token_length(model, tensors["input_ids"])
        embeds = table(tensors["input_ids"])
    else:
        raise ValueError(
            f"`inputs` must contain `pixel_values`, `input_ids` or `inputs_embeds`; got keys {sorted(tensors)}."
        )
    check_batch(embeds, "inputs['input_ids']")
    check_token_shapes(tensors, embeds.shape[:2], ("attention_mask", "token_type_ids"))
    check_finite("inputs['inputs_embeds']", embeds)
    accepted = _forward_keys(model)
    extra = {
        key: tensors[key] for key in _TEXT_PASSTHROUGH if key in tensors and (accepted is None or key in accepted)
    }
    if "input_ids" in tensors and "position_ids" not in extra and (accepted is None or "position_ids" in accepted):
        positions = _padding_aware_positions(model, tensors["input_ids"])
        if positions is not None:
            extra["position_ids"] = positions
    mask = extra.get("attention_mask", tensors.get("attention_mask"))
    token_mask = (mask if mask is not None else torch.ones(embeds.shape[:2], device=embeds.device)).to(embeds.dtype)
    special, named = special_tokens(model, tensors, token_mask.shape)
    word_mask = token_mask * (~special.to(token_mask.device)).to(token_mask.dtype)
    return PreparedInputs(
        embeds.detach(),
        TEXT,
        "inputs_embeds",
        extra=extra,
        token_mask=token_mask,
        word_mask=word_mask,
        special_tokens_named=named,
    )


def _forward_keys(model: nn.Module) -> set[str] | None:
    """The keyword inputs a transformers-style ``forward`` names (``None``: unknown, pass everything)."""
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    return set(parameters) if "inputs_embeds" in parameters else None


def _padding_aware_positions(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor | None:
    """Position ids as an embedding layer that numbers positions from the ids (RoBERTa: from ``padding_idx + 1``,
    padding kept at ``padding_idx``) would make them; ``None`` for models that number positions plainly."""
    numbering = padding_aware_numbering(model)
    if numbering is None:
        return None
    make, padding_idx = numbering
    return make(input_ids, padding_idx)


def logits_from_output(output: Any) -> torch.Tensor:
    """The logits of a model output: ``output.logits``, a bare tensor, or the first element of a tuple."""
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, torch.Tensor):
        logits = output
    if logits is None and isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        logits = output[0]
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise TypeError(
            "`model` must return classification logits of shape [batch, num_classes] (an output with `.logits` or a "
            f"tensor); got {type(output).__name__}."
        )
    return logits


def model_output(
    model: nn.Module, prepared: PreparedInputs, features: torch.Tensor | None = None, **kwargs: Any
) -> Any:
    """Run ``model`` on ``prepared`` (optionally with replacement ``features``) and return its raw output."""
    features = prepared.features if features is None else features
    if prepared.positional:
        return model(features, **kwargs)
    return model(**{prepared.feature_key: features}, **prepared.extra, **kwargs)


def forward_logits(model: nn.Module, prepared: PreparedInputs, features: torch.Tensor | None = None) -> torch.Tensor:
    """Logits ``[B, num_classes]`` of ``model`` on ``prepared``."""
    return logits_from_output(model_output(model, prepared, features))


def reduce_to_map(attributions: torch.Tensor, prepared: PreparedInputs) -> torch.Tensor:
    """Reduce per-feature attributions to one map per example.

    Images ``[B, C, H, W]`` are summed over channels to ``[B, H, W]``; other image-like tensors keep their shape.
    Text ``[B, T, D]`` is summed over the embedding dimension to ``[B, T]`` and padding positions are set to 0.
    """
    if prepared.kind == TEXT:
        return attributions.sum(dim=-1) * prepared.token_mask
    if attributions.dim() == 4:
        return attributions.sum(dim=1)
    return attributions


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model without either)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def frozen_eval(model: nn.Module, *, requires_grad: bool = False) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode with every parameter's ``requires_grad`` set to ``requires_grad``; restore after.

    Freezing parameters is what makes input gradients cost one plain backward pass: no parameter gradients are
    built. Both the train/eval mode of every submodule and each parameter's flag are restored on exit.
    """
    modes = {module: module.training for module in model.modules()}
    flags = {param: param.requires_grad for param in model.parameters()}
    try:
        model.eval()
        for param in flags:
            param.requires_grad_(requires_grad)
        yield model
    finally:
        for module, mode in modes.items():
            module.training = mode
        for param, flag in flags.items():
            param.requires_grad_(flag)


@contextlib.contextmanager
def twice_differentiable_attention() -> Iterator[None]:
    """Run scaled-dot-product attention on the MATH backend, the only CPU kernel with a double backward."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        yield
