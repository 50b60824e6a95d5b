"""Every code example of the README, the docs pages and the public docstrings runs (offline, tiny models)."""

import importlib
import pkgutil
from pathlib import Path

import pytest
from examples import ExampleError, python_blocks, run_docstrings, run_page

import hf_robattr


ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES_WITH_CODE = [page for page in PAGES if python_blocks(page)]
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(hf_robattr.__path__, prefix="hf_robattr.")
    if not info.name.rsplit(".", 1)[-1].startswith("_")
)


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda page: str(page.relative_to(ROOT)))
def test_page_examples_run(page, tmp_path):
    run_page(page, tmp_path)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    results = run_docstrings(importlib.import_module(name))
    assert results.failed == 0, f"{results.failed} of {results.attempted} docstring examples of {name} failed"


def test_a_broken_example_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n```python\nvalue = 1\n```\n\ntext\n\n```python\nassert value == 2, 'wrong value'\n```\n",
        encoding="utf-8",
    )
    with pytest.raises(ExampleError, match=r"page\.md:10: the example raised AssertionError: wrong value"):
        run_page(page, tmp_path)


def test_no_run_blocks_are_compiled_not_run(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- no-run: needs the Hub -->\n```python\nraise SystemExit('must not run')\n```\n\n"
        "    ```python\n    ran = True\n    ```\n",
        encoding="utf-8",
    )
    assert [block.no_run for block in python_blocks(page)] == ["needs the Hub", None]
    assert run_page(page, tmp_path) == 1
    page.write_text("<!-- no-run: needs the Hub -->\n```python\ndef broken(:\n```\n", encoding="utf-8")
    with pytest.raises(ExampleError, match=r"page\.md:3: the example does not compile"):
        run_page(page, tmp_path)


def test_a_broken_docstring_example_fails(tmp_path, monkeypatch):
    module = tmp_path / "broken_doc_module.py"
    module.write_text('def f():\n    """Add.\n\n    >>> 1 + 1\n    3\n    """\n', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    results = run_docstrings(importlib.import_module("broken_doc_module"))
    assert (results.attempted, results.failed) == (1, 1)
