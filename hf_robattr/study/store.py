"""The on-disk store of finished runs: one JSON file per run, written atomically, so a study resumes anywhere.

Layout under the study's output directory::

    study.json           the scale (a study directory holds one scale)
    runs/<key>.json      one record per run (see :func:`hf_robattr.study.run.run_one`)
    runs/set_aside/      files that could not be used: malformed, or made under another protocol

A run is *finished* when its file holds a record of the current protocol (its ``fingerprint``) whose status is not
``error``; finished runs are never recomputed. A malformed file (truncated JSON, not a record) is named in a
warning, moved to ``set_aside/`` and its run recomputed; so is a record made under another protocol, before it is
replaced. Nothing is deleted.

``study.json`` says which study the folder holds, so a damaged one is refused (:class:`StudyDirectoryError`, with
how to recover) rather than guessed: a study of another scale could otherwise be continued under this one. A
manifest of an older format is set aside and written again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hf_robattr.results_io import write_json_atomic

from .archive import RunArchive, move_aside


__all__ = ["RunStore", "StudyDirectoryError", "check_manifest", "write_json"]

logger = logging.getLogger(__name__)
MANIFEST = "study.json"
FORMAT = 2


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` to ``path`` atomically (:func:`~hf_robattr.results_io.write_json_atomic`), so a killed study
    leaves no half file; indented by 1, a NaN kept as ``NaN`` (the store's format)."""
    write_json_atomic(path, payload, indent=1, strict=False)


class StudyDirectoryError(ValueError):
    """``--output_dir`` cannot hold this study: another scale's study, or a damaged ``study.json``. The message says
    how to recover."""


class RunStore:
    """Finished runs of one study under ``directory`` (created if needed), for scale ``scale``.

    Opening a directory of another scale, or one whose ``study.json`` is not a manifest (unreadable JSON, ``[]``, no
    ``scale``), raises :class:`StudyDirectoryError` naming ``--output_dir`` and how to recover; a manifest of an
    older format is set aside (with a warning) and written again.

    ``archive``: a :class:`~hf_robattr.study.archive.RunArchive` the store mirrors (see its module): synced when
    the store opens (:attr:`synced`: how many records were copied in, how many archived), then each saved record
    archived too; ``export=False`` only copies in.
    """

    def __init__(
        self, directory: str | os.PathLike, scale: str, archive: RunArchive | None = None, export: bool = True
    ) -> None:
        self.directory = Path(directory)
        self.runs = self.directory / "runs"
        self.set_aside_dir = self.runs / "set_aside"
        self.runs.mkdir(parents=True, exist_ok=True)
        self.scale = scale
        self.archive = archive
        self.export = export
        self._open_manifest(scale)
        self.synced = self._sync_archive()

    def _open_manifest(self, scale: str) -> None:
        manifest = self.directory / MANIFEST
        stored = check_manifest(self.directory, scale)
        if stored is None:
            write_json(manifest, {"scale": scale, "format": FORMAT})
            return
        if stored.get("format") != FORMAT:
            self.set_aside(manifest, f"a study manifest of format {stored.get('format')!r}, not {FORMAT}")
            write_json(manifest, {"scale": scale, "format": FORMAT})

    def _sync_archive(self) -> tuple[int, int]:
        """Copy in the archived records of runs the store has no usable record of (none, malformed, or an error
        where the archive has a finished run; the error is set aside), then (:attr:`export`) archive every stored
        record; returns how many records were copied in and how many archived."""
        if self.archive is None:
            return 0, 0
        copied = 0
        for key in self.archive.stored_keys():
            local = self.load(key)  # a malformed file is set aside here
            if local is not None and local.get("status") != "error":
                continue
            archived = self.archive.load(key)
            if archived is None or (local is not None and archived.get("status") == "error"):
                continue
            if local is not None:
                target = move_aside(self.path(key), self.set_aside_dir)
                logger.warning("Set aside %s (an error) as %s: the runs archive holds a finished run.", key, target)
            write_json(self.path(key), archived)
            copied += 1
        archived_count = sum(self.archive.save(r) is not None for r in self.records()) if self.export else 0
        return copied, archived_count

    @staticmethod
    def _read(path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None

    def set_aside(self, path: Path, reason: str) -> Path:
        """Move ``path`` into ``runs/set_aside/`` (a unique name, nothing overwritten) with a warning naming it."""
        target = move_aside(path, self.set_aside_dir)
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
        if self.archive is not None and self.export:
            try:
                self.archive.save(record)
            except OSError as error:  # the run is stored; the next opening of the store archives it again
                logger.warning("Could not archive %s in %s: %s", record["key"], self.archive.directory, error)
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


def check_manifest(directory: str | os.PathLike, scale: str) -> dict[str, Any] | None:
    """``directory``'s study manifest (``None`` when it has none), checked to be one of scale ``scale``.

    Raises:
        StudyDirectoryError: the manifest is damaged or names another scale; the message says how to recover.
    """
    manifest = Path(directory) / MANIFEST
    if not manifest.exists():
        return None
    stored = RunStore._read(manifest)
    if not (isinstance(stored, dict) and isinstance(stored.get("scale"), str)):
        raise StudyDirectoryError(
            f"--output_dir {directory}: {manifest} is not a study manifest ({_describe(manifest)}), so "
            "the scale of the runs stored there is unknown. If the folder holds a study of this scale, write "
            f'{{"scale": "{scale}", "format": {FORMAT}}} into {manifest} and rerun: its finished runs are kept. '
            "Otherwise move the file away (or use another --output_dir) to start a new study there."
        )
    if stored["scale"] != scale:
        raise StudyDirectoryError(
            f"--output_dir {directory} holds a study of scale {stored['scale']!r}, not {scale!r}. "
            "Use another --output_dir for this scale."
        )
    return stored


def _describe(path: Path) -> str:
    """What a damaged manifest holds, in a few words."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "unreadable"
    if not text.strip():
        return "an empty file"
    try:
        content = json.loads(text)
    except json.JSONDecodeError:
        return "not valid JSON: truncated?"
    if isinstance(content, dict):
        return "a JSON object without a 'scale'"
    return f"the JSON {text.strip()[:40]}"
