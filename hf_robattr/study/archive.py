"""A folder of compressed run records, ``<key>.json.gz``, kept beside a study's report so that its runs outlive the
machine they ran on (``--runs_archive``, e.g. ``docs/study-cpu/records``, committed with the report).

A long study runs over several sessions on machines whose disks do not last: what is only in ``--output_dir`` can
be lost, and with it hours of runs. The archive mirrors the run store (:class:`~hf_robattr.study.store.RunStore`):

- when the store opens, each archived record is copied in where the store has no usable record of that run (none,
  a malformed file, or an error where the archive has a finished run), so the study resumes from it;
- each stored record the archive lacks, or holds in another version, is archived, and so is each record the store
  saves from then on (a study that only re-renders, ``--estimate_only``, copies in but archives nothing).

Nothing in the archive is lost: a version that is replaced is moved to ``set_aside/`` first, and an error never
replaces a finished run. ``archive.json`` names the study's scale: an archive of another scale is refused (run keys
do not name their scale). A file is the record's JSON as the store writes it, gzipped; a record whose content is
already archived is not written again, whatever gzip header the other machine wrote. A malformed archived file is
named in a warning and skipped.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from hf_robattr.results_io import write_bytes_atomic, write_json_atomic


__all__ = ["ARCHIVE_MANIFEST", "ARCHIVE_SUFFIX", "RunArchive", "move_aside"]

logger = logging.getLogger(__name__)
ARCHIVE_SUFFIX = ".json.gz"
ARCHIVE_MANIFEST = "archive.json"


def _text(record: dict[str, Any]) -> bytes:
    """The store's JSON of ``record`` (indented by 1, NaN kept)."""
    return json.dumps(record, indent=1, allow_nan=True).encode("utf-8")


class RunArchive:
    """The compressed records of one study (scale ``scale``) under ``directory``, created if needed.

    Raises ``ValueError`` naming ``--runs_archive`` when the folder cannot hold them: a file, a folder that cannot be
    created, or an archive of another scale.
    """

    def __init__(self, directory: str | os.PathLike, scale: str) -> None:
        self.directory = Path(directory)
        self.scale = scale
        self.set_aside_dir = self.directory / "set_aside"
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"--runs_archive {self.directory} is a file, not a folder of run records.")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"--runs_archive {self.directory} cannot be created: {error}") from error
        manifest = self.directory / ARCHIVE_MANIFEST
        stored = _read_json(manifest) if manifest.exists() else None
        if stored is None:
            write_json_atomic(manifest, {"scale": scale})
        elif not isinstance(stored, dict) or stored.get("scale") != scale:
            found = stored.get("scale") if isinstance(stored, dict) else stored
            raise ValueError(
                f"--runs_archive {self.directory} holds the runs of a study of scale {found!r}, not {scale!r} "
                "(run keys do not name their scale). Use another folder for this scale."
            )

    def path(self, key: str) -> Path:
        """Where the archived record of run ``key`` lives."""
        return self.directory / f"{key}{ARCHIVE_SUFFIX}"

    def stored_keys(self) -> list[str]:
        """The keys of the archived records, sorted."""
        return sorted(path.name[: -len(ARCHIVE_SUFFIX)] for path in self.directory.glob(f"*{ARCHIVE_SUFFIX}"))

    def _content(self, path: Path) -> bytes | None:
        try:
            return gzip.decompress(path.read_bytes())
        except (OSError, EOFError) as error:
            logger.warning("Skipped archived run %s: not a gzip file (%s).", path, error)
            return None

    def load(self, key: str) -> dict[str, Any] | None:
        """The archived record of ``key``; ``None`` when absent, or (with a warning) when the file is not a
        gzipped JSON record of that key."""
        path = self.path(key)
        if not path.exists() or (content := self._content(path)) is None:
            return None
        try:
            record = json.loads(content.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            logger.warning("Skipped archived run %s: not JSON (%s).", path, error)
            return None
        if not isinstance(record, dict) or record.get("key") != key or "status" not in record:
            logger.warning("Skipped archived run %s: not the run record of %r.", path, key)
            return None
        return record

    def save(self, record: dict[str, Any]) -> Path | None:
        """Archive ``record``; returns its path, or ``None`` when nothing was written: the same record is archived
        already, or ``record`` is an error and the archive holds a finished run of that key. A different version is
        moved to ``set_aside/`` first."""
        path, text = self.path(record["key"]), _text(record)
        if path.exists():
            content = self._content(path)
            if content == text:
                return None
            archived = self.load(record["key"]) if content is not None else None
            if record.get("status") == "error" and archived is not None and archived.get("status") != "error":
                return None
            self._set_aside(path)
        return write_bytes_atomic(path, gzip.compress(text, compresslevel=9, mtime=0))

    def _set_aside(self, path: Path) -> None:
        target = move_aside(path, self.set_aside_dir)
        logger.warning("Archived run %s replaced by a newer version; the old one is kept as %s.", path, target)


def move_aside(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` (created) under its name and a timestamp, made unique: nothing is
    overwritten. Returns the new path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}"
    counter = 0
    while target.exists():
        counter += 1
        target = target.with_name(f"{target.name.split('~')[0]}~{counter}")
    os.replace(path, target)
    return target


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "unreadable"
