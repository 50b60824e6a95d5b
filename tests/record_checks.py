"""The check of a typed results.json record against a file written by an older main (the run record and the
conversion record share it)."""

import json
from pathlib import Path


def check_round_trip(record_class, path: Path, tmp_path: Path):
    """Read ``path`` as ``record_class`` and check that nothing changes: the same JSON back (keys in the same order),
    written back byte for byte, read back equal. Returns the record."""
    text = path.read_text()
    data = json.loads(text)
    record = record_class.from_json(data)
    assert json.dumps(record.to_json()) == json.dumps(data)  # the same keys, in the same order
    assert record.write(tmp_path).read_text() == text.rstrip("\n")
    assert record_class.read(tmp_path) == record
    return record
