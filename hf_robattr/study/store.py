"""The on-disk store of finished runs: one JSON file per run, written atomically, so a study resumes anywhere.

Layout under the study's output directory::

    study.json           the scale (a study directory holds one scale)
    runs/<key>.json      one record per run (see :func:`hf_robattr.study.run.run_one`)
    runs/set_aside/      files that could not be used: malformed, or made under another protocol

A run is *finished* when its file holds a record of the current protocol (its ``fingerprint``) whose status is not
``error``; finished runs are never recomputed. A malformed file (truncated JSON, not a record) is named in a
warning, moved to ``set_aside/`` and its run recomputed; so is a record made under another protocol, before it is
replaced. Nothing is deleted.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


__all__ = ["RunStore", "write_json"]

logger = logging.getLogger(__name__)
MANIFEST = "study.json"
FORMAT = 2


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file + rename), so a killed study leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=1, allow_nan=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class RunStore:
    """Finished runs of one study under ``directory`` (created if needed), for scale ``scale``.

    Opening a directory of another scale raises a ``ValueError`` naming ``--output_dir``; a malformed
    ``study.json`` is set aside (with a warning) and written again.
    """

    def __init__(self, directory: str | os.PathLike, scale: str) -> None:
        self.directory = Path(directory)
        self.runs = self.directory / "runs"
        self.set_aside_dir = self.runs / "set_aside"
        self.runs.mkdir(parents=True, exist_ok=True)
        self.scale = scale
        manifest = self.directory / MANIFEST
        stored = self._read(manifest) if manifest.exists() else None
        if isinstance(stored, dict) and "scale" in stored:
            if stored["scale"] != scale:
                raise ValueError(
                    f"--output_dir {self.directory} holds a study of scale {stored['scale']!r}, not {scale!r}. "
                    "Use another --output_dir for this scale."
                )
            if stored.get("format") == FORMAT:
                return
        if manifest.exists():
            self.set_aside(manifest, "not a study manifest of this version")
        write_json(manifest, {"scale": scale, "format": FORMAT})

    def _read(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None

    def set_aside(self, path: Path, reason: str) -> Path:
        """Move ``path`` into ``runs/set_aside/`` (a unique name, nothing overwritten) with a warning naming it."""
        self.set_aside_dir.mkdir(parents=True, exist_ok=True)
        target = self.set_aside_dir / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}"
        counter = 0
        while target.exists():
            counter += 1
            target = target.with_name(f"{target.name.split('~')[0]}~{counter}")
        os.replace(path, target)
        logger.warning("Set aside %s (%s) as %s; its run will be recomputed.", path, reason, target)
        return target

    def path(self, key: str) -> Path:
        """Where the record of run ``key`` lives."""
        return self.runs / f"{key}.json"

    def load(self, key: str, fingerprint: str | None = None) -> dict[str, Any] | None:
        """The stored record of ``key``, or ``None``. A malformed file is set aside (``None``); with
        ``fingerprint``, a record of another protocol counts as absent (it is set aside when replaced)."""
        path = self.path(key)
        if not path.exists():
            return None
        record = self._read(path)
        if not isinstance(record, dict) or record.get("key") != key or "status" not in record:
            self.set_aside(path, "malformed: not a JSON run record")
            return None
        if fingerprint is not None and record.get("fingerprint") != fingerprint:
            return None
        return record

    def is_finished(self, key: str, fingerprint: str | None = None) -> bool:
        """Whether ``key`` has a stored record (of ``fingerprint``'s protocol) that is not an error (errors are
        retried)."""
        record = self.load(key, fingerprint)
        return record is not None and record.get("status") != "error"

    def save(self, record: dict[str, Any]) -> Path:
        """Store ``record`` under its ``key`` (atomically); a record of another protocol is set aside first."""
        path = self.path(record["key"])
        if path.exists():
            old = self._read(path)
            if isinstance(old, dict) and old.get("fingerprint") != record.get("fingerprint"):
                self.set_aside(path, f"made under another protocol ({old.get('fingerprint')})")
        write_json(path, record)
        return path

    def current_records(self, specs: Iterable[Any]) -> list[dict[str, Any]]:
        """The stored records of ``specs`` (``RunSpec``s) made under their current protocol, in that order."""
        return [record for record in (self.load(s.key, s.fingerprint) for s in specs) if record is not None]

    def records(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Stored records, for ``keys`` (in that order, missing ones skipped) or all of them (sorted by key);
        malformed files are set aside."""
        if keys is None:
            keys = [path.stem for path in sorted(self.runs.glob("*.json"))]
        return [record for record in (self.load(key) for key in keys) if record is not None]
