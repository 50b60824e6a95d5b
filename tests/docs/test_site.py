"""The documentation site builds with no warnings, and its API reference documents every public name."""

import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import hf_robattr


ROOT = Path(__file__).resolve().parents[2]


def inventory_names(objects_inv: Path) -> set[str]:
    """The object names in a Sphinx inventory (``objects.inv``, what mkdocstrings writes)."""
    header, _, rest = objects_inv.read_bytes().partition(b"zlib.\n")
    assert b"Sphinx inventory version 2" in header
    rows = zlib.decompress(rest).decode().splitlines()
    return {row.split(" ", 1)[0] for row in rows if row}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    # CI builds the site only here: a missing mkdocs is a broken install, not a reason to skip.
    assert shutil.which("mkdocs") or (Path(sys.executable).parent / "mkdocs").exists(), (
        "mkdocs is not installed: pip install -e '.[docs]' (the test extra includes it)"
    )
    folder = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "WARNING" not in result.stderr, result.stderr[-3000:]
    return folder


def test_api_reference_has_every_public_name(site):
    documented = {name.rsplit(".", 1)[-1] for name in inventory_names(site / "objects.inv")}
    missing = sorted(set(hf_robattr.__all__) - documented - {"__version__"})
    assert missing == [], f"public names missing from the API reference: {missing}"


def test_site_loads_nothing_from_the_network(site):
    pages = [page.read_text(encoding="utf-8") for page in site.rglob("*.html")]
    assert pages
    for remote in ("fonts.googleapis.com", "fonts.gstatic.com", "cdn.jsdelivr.net", "unpkg.com"):
        assert not any(remote in page for page in pages), remote


def test_the_api_index_lists_the_top_level_api():
    index = (ROOT / "docs" / "api" / "index.md").read_text(encoding="utf-8")
    missing = [name for name in hf_robattr.__all__[1:] if f"`{name}`" not in index]
    assert missing == [], f"docs/api/index.md does not list {missing}"
