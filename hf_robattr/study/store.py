"""The on-disk store of finished runs: one JSON file per run, written atomically, so a study resumes anywhere.

Layout under the study's output directory::

    study.json           the scale and the settings' fingerprint (a study directory holds one protocol)
    runs/<key>.json      one record per run (see :func:`hf_robattr.study.runner.run_one`)

A run is *finished* when its file exists and its status is not ``error``; finished runs are never recomputed.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .grid import StudySettings


__all__ = ["RunStore"]


def _write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file + rename), so a killed study leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=1, default=str, allow_nan=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class RunStore:
    """Finished runs of one study under ``directory`` (created if needed).

    ``settings`` binds the directory to one protocol: opening a directory written under other settings raises a
    ``ValueError`` naming ``--output_dir``, rather than mixing runs measured differently.
    """

    def __init__(self, directory: str | os.PathLike, settings: StudySettings) -> None:
        self.directory = Path(directory)
        self.runs = self.directory / "runs"
        self.runs.mkdir(parents=True, exist_ok=True)
        manifest = self.directory / "study.json"
        fingerprint = settings.fingerprint()
        if manifest.exists():
            stored = json.loads(manifest.read_text(encoding="utf-8"))
            if stored.get("fingerprint") != fingerprint:
                raise ValueError(
                    f"--output_dir {self.directory} holds a study run with other settings (scale "
                    f"{stored.get('scale')!r}, fingerprint {stored.get('fingerprint')}; now {settings.scale!r}, "
                    f"{fingerprint}). Use a new --output_dir, or delete the old one to start over."
                )
        else:
            _write_json(manifest, {"scale": settings.scale, "fingerprint": fingerprint, "settings": asdict(settings)})

    def path(self, key: str) -> Path:
        """Where the record of run ``key`` lives."""
        return self.runs / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """The stored record of ``key``, or ``None``."""
        path = self.path(key)
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def is_finished(self, key: str) -> bool:
        """Whether ``key`` has a stored record that is not an error (errors are retried)."""
        record = self.load(key)
        return record is not None and record.get("status") != "error"

    def save(self, record: dict[str, Any]) -> Path:
        """Store ``record`` under its ``key`` (atomically); return the file."""
        path = self.path(record["key"])
        _write_json(path, record)
        return path

    def records(self, keys: list[str] | None = None) -> list[dict[str, Any]]:
        """Stored records, for ``keys`` (in that order, missing ones skipped) or all of them (sorted by key)."""
        if keys is None:
            return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(self.runs.glob("*.json"))]
        return [record for record in (self.load(key) for key in keys) if record is not None]
