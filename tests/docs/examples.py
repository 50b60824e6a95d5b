"""Run the code examples of Markdown pages and docstrings, as users would read them.

- Markdown: every fenced ``python`` block of a page runs, top to bottom, in one namespace per page, in a fresh
  working directory. A block right after a line ``<!-- no-run: <reason> -->`` (it needs the Hub, a GPU...) is only
  compiled, so it is still checked for syntax.
- Docstrings: the ``>>>`` examples of a module run with :mod:`doctest`, as ``doctest.testmod`` would.
"""

from __future__ import annotations

import contextlib
import doctest
import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
NO_RUN = re.compile(r"<!--\s*no-run:\s*(?P<reason>[^>]*?)\s*-->\s*$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced ``python`` block: its page, the line its code starts on, the code, and why it does not run."""

    path: Path
    line: int
    code: str
    no_run: str | None


class ExampleError(AssertionError):
    """An example failed: names the page and the line of the block."""


def python_blocks(path: Path) -> list[CodeBlock]:
    """The fenced ``python`` blocks of the Markdown page ``path``, in order."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        if match.group("info").strip().split(" ")[0] not in ("python", "py"):
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NO_RUN.search(before)
        line = text.count("\n", 0, match.start("body")) + 1
        code = textwrap.dedent(match.group("body"))
        blocks.append(CodeBlock(path, line, code, marker.group("reason") if marker else None))
    return blocks


@contextlib.contextmanager
def working_directory(folder: Path):
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def run_page(path: Path, workdir: Path) -> int:
    """Run every block of ``path`` in order in one namespace inside ``workdir``; return how many ran.

    Raises:
        ExampleError: naming ``path:line`` of the first block that failed to compile or run.
    """
    namespace: dict = {"__name__": "__example__"}
    ran = 0
    with working_directory(workdir):
        for block in python_blocks(path):
            where = f"{block.path}:{block.line}"
            try:
                compiled = compile(block.code, where, "exec")
            except SyntaxError as error:
                raise ExampleError(f"{where}: the example does not compile: {error}") from error
            if block.no_run is not None:
                continue
            try:
                exec(compiled, namespace)
            except Exception as error:
                raise ExampleError(f"{where}: the example raised {type(error).__name__}: {error}") from error
            ran += 1
    return ran


def run_docstrings(module: ModuleType) -> doctest.TestResults:
    """Run ``module``'s docstring examples the way ``doctest.testmod`` does; return its results."""
    return doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
