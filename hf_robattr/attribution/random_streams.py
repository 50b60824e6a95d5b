"""Random streams per example: every random draw made for an example comes from that example's own generator.

A stream is keyed by ``(seed, example index, key)``, so an example gets the same draws whatever batch it is scored
in, whatever the batch size, and whichever process scores it (sharded scoring). Draws for text are made for the
real tokens only and scattered into the padded layout, so the amount of padding does not shift the stream either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch


def stream_seed(seed: int, index: int, key: str = "") -> int:
    """A 63-bit seed for the stream of example ``index`` under ``seed`` and ``key`` (stable across processes)."""
    digest = hashlib.sha256(f"{seed}/{index}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class ExampleStreams:
    """One ``torch.Generator`` per row of a batch (rows may share one: the perturbed copies of an example).

    Draws are made row by row on the CPU, in row order, and moved to the requested device, so a seed gives the same
    numbers on any device.
    """

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        self.generators = tuple(generators)

    @classmethod
    def keyed(cls, seed: int, indices: Sequence[int] | torch.Tensor, key: str = "") -> ExampleStreams:
        """Fresh streams for the examples ``indices`` (global example indices)."""
        values = indices.tolist() if isinstance(indices, torch.Tensor) else list(indices)
        return cls([torch.Generator().manual_seed(stream_seed(seed, int(index), key)) for index in values])

    def __len__(self) -> int:
        return len(self.generators)

    def select(self, index: slice | torch.Tensor) -> ExampleStreams:
        """The streams of a sub-batch (a slice, or a boolean / integer index)."""
        if isinstance(index, slice):
            return ExampleStreams(self.generators[index])
        index = torch.as_tensor(index)
        if index.dtype == torch.bool:
            index = index.nonzero().squeeze(1)
        return ExampleStreams([self.generators[i] for i in index.tolist()])

    def repeat_interleave(self, repeats: int) -> ExampleStreams:
        """Each row's stream ``repeats`` times in a row (copies of an example draw from its stream in turn)."""
        return ExampleStreams([g for g in self.generators for _ in range(repeats)])

    def tile(self, repeats: int) -> ExampleStreams:
        """The whole batch's streams ``repeats`` times one after another."""
        return ExampleStreams(self.generators * repeats)

    def draw(
        self,
        kind: str,
        shape: Sequence[int],
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        positions: torch.Tensor | None = None,
        token_axis: int = 0,
    ) -> torch.Tensor:
        """``[B, *shape]`` draws, row ``b`` from stream ``b``: ``kind`` is ``"rand"`` (uniform on [0, 1)) or
        ``"randn"`` (standard normal).

        ``positions`` ``[B, T]`` (text: 1 for real tokens) makes each row draw ``shape`` with its axis
        ``token_axis`` (of size ``T``) cut to its real tokens; the draws are scattered to those positions and
        padding gets 0.
        """
        sampler = {"rand": torch.rand, "randn": torch.randn}[kind]
        rows = []
        for row, generator in enumerate(self.generators):
            if positions is None:
                rows.append(sampler(tuple(shape), generator=generator, dtype=dtype))
                continue
            real = positions[row].bool().cpu()
            cut = list(shape)
            cut[token_axis] = int(real.sum())
            values = sampler(tuple(cut), generator=generator, dtype=dtype)
            full = torch.zeros(tuple(shape), dtype=dtype)
            index = [slice(None)] * len(shape)
            index[token_axis] = real
            full[tuple(index)] = values
            rows.append(full)
        return torch.stack(rows).to(device)
