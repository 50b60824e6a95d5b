"""A byte-bounded LRU cache of tensors: the memo of :class:`~hf_robattr.data.ImageClassificationTransform`.

Training decodes and transforms the same few hundred images on every epoch and every run of a process; the
transform keeps each finished tensor here under a digest of the encoded image (see :func:`encoded_digest`) and the
transform's settings, so a repeated image costs a hash and a copy. The cache holds at most ``max_bytes`` of tensor
data (:data:`DEFAULT_IMAGE_CACHE_BYTES`, 256 MiB, for the process-wide :data:`IMAGE_TENSOR_CACHE`) and drops the
least recently used tensors beyond it, so a data set larger than the cap costs memory up to the cap, not more.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import torch


__all__ = ["DEFAULT_IMAGE_CACHE_BYTES", "IMAGE_TENSOR_CACHE", "TensorCache", "encoded_digest"]

# 256 MiB: every split of the embedded sets at 32x32 several times over (one 3x32x32 float32 image is 12 KiB), or
# about 440 images at 3x224x224.
DEFAULT_IMAGE_CACHE_BYTES = 256 * 2**20


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


class TensorCache:
    """A thread-safe LRU mapping from hashable keys to tensors, bounded by the total bytes of the tensors it holds.

    The cache never shares storage with its callers: :meth:`put` stores a copy and :meth:`get` returns a copy, so
    a caller may modify what it passed in or got back in place. A tensor larger than ``max_bytes`` is not stored;
    ``max_bytes=0`` turns the cache off. ``hits`` and ``misses`` count :meth:`get` calls.
    """

    def __init__(self, max_bytes: int = DEFAULT_IMAGE_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}.")
        self._max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def max_bytes(self) -> int:
        """The cap on the bytes of tensor data held; setting it evicts down to the new cap."""
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"max_bytes must be >= 0, got {value}.")
        with self._lock:
            self._max_bytes = value
            self._evict()

    @property
    def nbytes(self) -> int:
        """The bytes of tensor data held now."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> torch.Tensor | None:
        """A copy of the tensor stored under ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            tensor = self._entries.get(key)
            if tensor is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return tensor.clone()

    def put(self, key: Hashable, tensor: torch.Tensor) -> None:
        """Store a copy of ``tensor`` under ``key``, evicting the least recently used tensors beyond the cap."""
        size = _nbytes(tensor)
        if size > self._max_bytes:
            return
        copy = tensor.detach().clone()  # own, compact storage: never a view that keeps a whole batch alive
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._nbytes -= _nbytes(old)
            self._entries[key] = copy
            self._nbytes += size
            self._evict()

    def clear(self) -> None:
        """Drop every tensor and reset the counters."""
        with self._lock:
            self._entries.clear()
            self._nbytes = 0
            self.hits = self.misses = 0

    def _evict(self) -> None:
        while self._nbytes > self._max_bytes and self._entries:
            _, tensor = self._entries.popitem(last=False)
            self._nbytes -= _nbytes(tensor)


def encoded_digest(value: Any) -> bytes | None:
    """A 16-byte BLAKE2b digest of an encoded image as ``datasets.Image(decode=False)`` gives it (a dict with
    ``bytes`` and ``path``): of its bytes, else of the local file at its path. ``None`` when there is nothing
    to hash here (a decoded image, an array, a remote path): such inputs are not cached."""
    if not isinstance(value, dict):
        return None
    data = value.get("bytes")
    if data is None:
        path = value.get("path")
        if not isinstance(path, str) or not os.path.isfile(path):
            return None
        with open(path, "rb") as file:
            data = file.read()
    return hashlib.blake2b(data, digest_size=16).digest()


# The process-wide cache the transforms share (set ``IMAGE_TENSOR_CACHE.max_bytes`` to change its cap, 0 to stop
# caching). DataLoader worker processes each fill their own copy.
IMAGE_TENSOR_CACHE = TensorCache(DEFAULT_IMAGE_CACHE_BYTES)
