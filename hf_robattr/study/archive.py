"""A folder of compressed run records, ``<key>.json.gz``, kept beside a study's report so that its runs outlive the
machine they ran on (``--runs_archive``, e.g. ``docs/study-cpu/runs``, committed with the report).

A long study runs over several sessions on machines whose disks do not last: what is only in ``--output_dir`` can
be lost, and with it hours of runs. The archive mirrors the run store (:class:`~hf_robattr.study.store.RunStore`):

- when the store opens, each archived record whose run the store lacks is copied in (the study then resumes from
  it and recomputes nothing), and each stored record the archive lacks, or holds in another version, is archived;
- each record the store saves is archived at once.

A file is the record's JSON as the store writes it, gzipped with a fixed timestamp and name, so the same record
always gives the same bytes (an unchanged run leaves git nothing to commit). A malformed archived file is named in
a warning and skipped; nothing in the archive is deleted.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from pathlib import Path
from typing import Any

from hf_robattr.results_io import write_bytes_atomic


__all__ = ["ARCHIVE_SUFFIX", "RunArchive"]

logger = logging.getLogger(__name__)
ARCHIVE_SUFFIX = ".json.gz"


def encode(record: dict[str, Any]) -> bytes:
    """``record`` as the archive stores it: the store's JSON (indented by 1, NaN kept), gzipped reproducibly."""
    text = json.dumps(record, indent=1, allow_nan=True).encode("utf-8")
    return gzip.compress(text, compresslevel=9, mtime=0)


class RunArchive:
    """The compressed records under ``directory`` (created on the first write)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise NotADirectoryError(f"--runs_archive {self.directory} is a file, not a folder of run records.")

    def path(self, key: str) -> Path:
        """Where the archived record of run ``key`` lives."""
        return self.directory / f"{key}{ARCHIVE_SUFFIX}"

    def stored_keys(self) -> list[str]:
        """The keys of the archived records, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(path.name[: -len(ARCHIVE_SUFFIX)] for path in self.directory.glob(f"*{ARCHIVE_SUFFIX}"))

    def load(self, key: str) -> dict[str, Any] | None:
        """The archived record of ``key``; ``None`` when absent, or (with a warning) when the file is not a
        gzipped JSON record of that key."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            record = json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
        except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as error:
            logger.warning("Skipped archived run %s: not a gzipped JSON record (%s).", path, error)
            return None
        if not isinstance(record, dict) or record.get("key") != key or "status" not in record:
            logger.warning("Skipped archived run %s: not the run record of %r.", path, key)
            return None
        return record

    def save(self, record: dict[str, Any]) -> Path | None:
        """Archive ``record`` (atomically); returns its path, or ``None`` when the same bytes were already there."""
        path, data = self.path(record["key"]), encode(record)
        if path.exists() and path.read_bytes() == data:
            return None
        write_bytes_atomic(path, data)
        return path
