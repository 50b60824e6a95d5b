"""The results-file leaf module: strict JSON, atomic writes, repo ids."""

import json
import os
import stat

import numpy as np
import pytest
import torch

from hf_robattr.results_io import (
    RESULTS_FILE,
    check_repo_id,
    is_repo_id,
    json_safe,
    names_hub_repo,
    read_json,
    write_bytes_atomic,
    write_json_atomic,
    write_results,
)


def test_json_safe_makes_strict_json():
    value = {
        "nan": float("nan"),
        "inf": [float("-inf"), (1, np.float32(2.5))],
        3: np.int64(4),
        "tensor": torch.tensor([0.5]),
        "scalar": torch.tensor(float("nan")),
        "vector": torch.tensor([1.0, 2.0]),
    }
    safe = json_safe(value)
    assert safe["nan"] is None and safe["inf"] == [None, [1, 2.5]] and safe["3"] == 4
    assert safe["tensor"] == 0.5 and safe["scalar"] is None
    assert isinstance(safe["vector"], torch.Tensor)  # left for json.dump(default=str)
    json.dumps({key: item for key, item in safe.items() if key != "vector"}, allow_nan=False)


def test_write_json_atomic_replaces_whole_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = write_results(tmp_path / "run", {"a": float("nan")})
    assert path == tmp_path / "run" / RESULTS_FILE and read_json(path) == {"a": None}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_json_atomic(path, {"b": 1})
    assert read_json(path) == {"a": None}
    assert [item.name for item in path.parent.iterdir()] == [RESULTS_FILE]


def test_write_bytes_atomic_writes_exactly_the_bytes_and_survives_a_crash(tmp_path, monkeypatch):
    path = write_bytes_atomic(tmp_path / "new" / "a.json.gz", b"\x1f\x8b\x00")
    assert path.read_bytes() == b"\x1f\x8b\x00" and stat.S_IMODE(os.stat(path).st_mode) == 0o644

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(path, b"other")
    assert path.read_bytes() == b"\x1f\x8b\x00" and [item.name for item in path.parent.iterdir()] == ["a.json.gz"]


def test_a_lenient_write_keeps_nan_and_the_indent_as_json_dump_writes_them(tmp_path):
    """``strict=False`` is the study store's format: what ``json.dump(indent=1)`` writes, NaN literal included."""
    payload = {"key": "a", "x": float("nan"), "y": [1, (2, 3.5)], "z": {"é": None}}
    path = write_json_atomic(tmp_path / "runs" / "a.json", payload, indent=1, strict=False)
    assert path.read_text(encoding="utf-8") == json.dumps(payload, indent=1)
    assert [item.name for item in path.parent.iterdir()] == ["a.json"]
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json_atomic(path, {"object": object()}, strict=False)
    assert path.read_text(encoding="utf-8") == json.dumps(payload, indent=1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("org/name", True), ("org/name.v1-2", True), ("name", False), ("a/b/c", False), (None, False), (3, False)],
)
def test_is_repo_id(value, expected):
    assert is_repo_id(value) is expected


def test_check_repo_id_and_local_folders(tmp_path, monkeypatch):
    assert check_repo_id("org/name", "repo_id") == "org/name"
    with pytest.raises(ValueError, match=r"`space_id` must look like 'ORG/NAME' \(a Hub Space id\), got 'x'"):
        check_repo_id("x", "space_id", "a Hub Space id")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "vit").mkdir(parents=True)
    assert is_repo_id("runs/vit") and not names_hub_repo("runs/vit")  # a local folder is not a Hub repo
    assert names_hub_repo("org/name")
