"""Results-file I/O, the one home of what every layer that writes or reads a run folder shares: the file name
(:data:`RESULTS_FILE`), the conversion to strict JSON (:func:`json_safe`), the atomic write
(:func:`write_json_atomic`, :func:`write_results`) and the Hub repo-id check (:func:`is_repo_id`,
:func:`check_repo_id`, :func:`names_hub_repo`).

A leaf module: it imports only the standard library, so ``robustness``, ``training``, ``hub``, ``conversion``,
``demo`` and ``study`` all import it without crossing a layer.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


__all__ = [
    "RESULTS_FILE",
    "check_repo_id",
    "is_repo_id",
    "json_safe",
    "names_hub_repo",
    "read_json",
    "write_json_atomic",
    "write_results",
]

RESULTS_FILE = "results.json"
"""The name of a finished run's record in its output folder (training runs and conversions alike)."""

_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def is_repo_id(value: Any) -> bool:
    """Whether ``value`` is a string shaped like a Hub repo id, ``ORG/NAME``."""
    return isinstance(value, str) and bool(_REPO_ID.match(value))


def names_hub_repo(value: Any) -> bool:
    """Whether ``value`` names a Hub repo rather than a local folder: shaped ``ORG/NAME`` and no such path exists."""
    return is_repo_id(value) and not Path(value).exists()


def check_repo_id(value: Any, argument: str, what: str = "") -> str:
    """``value`` if it looks like ``ORG/NAME``, else ``ValueError`` naming ``argument`` (``what`` says what the id
    names, e.g. ``"a Hub Space id"``)."""
    if not is_repo_id(value):
        kind = f" ({what})" if what else ""
        raise ValueError(f"`{argument}` must look like 'ORG/NAME'{kind}, got {value!r}.")
    return value


def _scalar(value: Any) -> Any:
    """A numpy scalar or a one-element torch tensor as a Python number; anything else as it is."""
    item = getattr(value, "item", None)
    if not callable(item):
        return value
    numel = getattr(value, "numel", None)
    if callable(numel):  # torch: any one-element tensor
        return item() if numel() == 1 else value
    return item() if getattr(value, "shape", None) == () else value  # numpy scalar or 0-d array


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` accepts: NaN and infinities become ``None``
    (JSON ``null``), tuples lists, numpy scalars and one-element torch tensors Python numbers; mappings and lists are
    copied recursively (keys become strings). Other objects are left for ``json.dump(default=str)``.

    Use it on a robustness result before writing it to JSON: a NaN means "no example left to average" and must not
    be written as the non-standard ``NaN`` literal.
    """
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    value = _scalar(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: str | os.PathLike, payload: Any, *, indent: int = 2, strict: bool = True) -> Path:
    """Write ``payload`` to ``path`` as JSON indented by ``indent``, atomically: to a temporary file in the same
    folder, flushed to disk, then ``os.replace``, so a crash mid-write leaves the previous file whole and no temporary
    file behind. Creates the folder. Returns the path.

    ``strict`` (the default): strict JSON, through :func:`json_safe` (a NaN is written as ``null``), other objects
    as ``str``. ``strict=False``: ``payload`` as ``json.dump`` writes it (a NaN as the ``NaN`` literal that Python's
    ``json`` reads back; an object JSON cannot hold raises ``TypeError``), as the study's run store keeps its records.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=f"{path.suffix}.tmp")
    options: dict[str, Any] = {"allow_nan": False, "default": str} if strict else {"allow_nan": True}
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(json_safe(payload) if strict else payload, handle, indent=indent, **options)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # mkstemp creates it private; the record is an ordinary readable file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_results(output_dir: str | os.PathLike, results: Mapping[str, Any]) -> Path:
    """Write ``OUTPUT_DIR/results.json`` with :func:`write_json_atomic`. Returns the path."""
    return write_json_atomic(Path(output_dir) / RESULTS_FILE, results)


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in ``path`` (UTF-8)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
