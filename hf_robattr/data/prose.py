"""Real English prose that ships with Python and the project's dependencies: the offline default conversion text.

Attention transfer needs real language, not generated word salad, and it must run offline. Every source below is
installed with hf_robattr; source files are read and parsed (``ast``, ``tokenize``), never imported:

* ``pydoc_topics``: the Python language reference topics that ``pydoc`` shows (``pydoc_data.topics``);
* ``stdlib_docstrings`` / ``stdlib_comments``: docstrings and ``#`` comments of the standard library's modules;
* ``package_docstrings``: docstrings of the installed dependencies (:data:`PACKAGES`: scikit-learn, SciPy, NumPy,
  PyTorch, transformers, ...);
* ``sklearn_descriptions``: scikit-learn's descriptions of its bundled data sets.

Text is cut into sentences, and only sentences that read as prose are kept: 6 to 40 words, starting with a capital
letter, ending with ``.``, ``!`` or ``?``, mostly alphabetic words, no code (``>>>``, ``=``, brackets, dotted names,
underscores). The sentences depend on the installed versions; :func:`prose_fingerprint` names them, and they are
kept in a cache folder after the first harvest.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import re
import sys
import sysconfig
import tempfile
import tokenize
from collections.abc import Iterable, Iterator
from pathlib import Path

from datasets import Dataset, DatasetDict

from .generation import split_dataset


__all__ = ["PACKAGES", "PROSE_SOURCES", "english_prose", "prose_fingerprint", "prose_sentences"]

# Installed dependencies whose docstrings are harvested (import name, distribution name); missing ones are skipped.
PACKAGES = (
    ("sklearn", "scikit-learn"), ("scipy", "scipy"), ("numpy", "numpy"), ("matplotlib", "matplotlib"),
    ("datasets", "datasets"), ("huggingface_hub", "huggingface-hub"), ("peft", "peft"), ("accelerate", "accelerate"),
    ("PIL", "pillow"), ("jinja2", "jinja2"), ("tqdm", "tqdm"), ("evaluate", "evaluate"), ("captum", "captum"),
    ("pandas", "pandas"), ("torch", "torch"), ("transformers", "transformers"),
)  # fmt: skip
# Standard-library folders left out: tests, and code that ships as data.
_SKIPPED_FOLDERS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib2to3",
                    "turtledemo", "testing"}  # fmt: skip

MIN_WORDS, MAX_WORDS = 6, 40
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
# Anything that marks code, markup or a reference rather than prose.
_NOT_PROSE = re.compile(r"[<>{}\[\]=_`|\\#*~^$@/]|::|\.\.|\(\)|\b\w+\.\w+\b|\d\.\d|\s-\w|\w\(")


def _python_files(root: Path) -> Iterator[Path]:
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in _SKIPPED_FOLDERS)
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(folder) / name


def _source(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _docstrings(root: Path) -> Iterator[str]:
    for path in _python_files(root):
        try:
            tree = ast.parse(_source(path) or "")
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    yield doc


def _comments(root: Path) -> Iterator[str]:
    """Runs of ``#`` comments on consecutive lines, joined into one text each."""
    for path in _python_files(root):
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(_source(path) or "").readline))
        except (tokenize.TokenError, SyntaxError, IndentationError):
            continue
        block: list[str] = []
        last_line = -2
        for token in tokens:
            if token.type != tokenize.COMMENT:
                continue
            if token.start[0] != last_line + 1 and block:
                yield " ".join(block)
                block = []
            block.append(token.string.lstrip("#").strip())
            last_line = token.start[0]
        if block:
            yield " ".join(block)


def _stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _pydoc_topics() -> Iterator[str]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some minimal Python builds leave pydoc_data out
        return
    for name in sorted(topics):
        yield topics[name]


def _package_docstrings() -> Iterator[str]:
    for module, _ in PACKAGES:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            yield from _docstrings(Path(spec.origin).parent)


def _sklearn_descriptions() -> Iterator[str]:
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.origin:
        for path in sorted((Path(spec.origin).parent / "datasets" / "descr").glob("*.rst")):
            yield path.read_text(encoding="utf-8")


PROSE_SOURCES = {
    "pydoc_topics": _pydoc_topics,
    "stdlib_docstrings": lambda: _docstrings(_stdlib()),
    "stdlib_comments": lambda: _comments(_stdlib()),
    "package_docstrings": _package_docstrings,
    "sklearn_descriptions": _sklearn_descriptions,
}


def _is_prose(sentence: str) -> bool:
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    if not sentence[0].isupper() or sentence[-1] not in ".!?" or _NOT_PROSE.search(sentence):
        return False
    alphabetic = sum(word.strip(",.;:!?()'\"").isalpha() for word in words)
    return alphabetic >= 0.85 * len(words)


def _sentences(text: str) -> Iterator[str]:
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in paragraph.splitlines()]
        if any(line.startswith((">>>", "...", "$ ")) for line in lines):
            continue  # an interactive example
        for sentence in _SENTENCE_END.split(" ".join(line for line in lines if line)):
            sentence = " ".join(sentence.split())
            if _is_prose(sentence):
                yield sentence


def _check_sources(sources: Iterable[str]) -> tuple[str, ...]:
    sources = tuple(sources)
    unknown = [s for s in sources if s not in PROSE_SOURCES]
    if unknown or not sources:
        raise ValueError(f"sources must be a non-empty selection of {list(PROSE_SOURCES)}, got {list(sources)}.")
    return sources


def _versions(sources: tuple[str, ...]) -> str:
    """What the harvest depends on: Python's version and, for package docstrings, the packages' versions."""
    parts = [sys.version, *sources]
    if "package_docstrings" in sources:
        for _, distribution in PACKAGES:
            try:
                parts.append(f"{distribution}=={importlib.metadata.version(distribution)}")
            except importlib.metadata.PackageNotFoundError:
                parts.append(f"{distribution} missing")
    if "sklearn_descriptions" in sources:
        try:
            parts.append(f"scikit-learn=={importlib.metadata.version('scikit-learn')}")
        except importlib.metadata.PackageNotFoundError:
            parts.append("scikit-learn missing")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def _cache_folder() -> Path:
    from huggingface_hub import constants

    return Path(os.environ.get("HF_ROBATTR_CACHE", Path(constants.HF_HOME) / "hf_robattr"))


def _harvest(sources: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for source in sources:
        for text in PROSE_SOURCES[source]():
            for sentence in _sentences(text):
                seen.setdefault(sentence, source)
    return tuple(seen.items())


@functools.lru_cache(maxsize=4)
def prose_sentences(sources: tuple[str, ...] = tuple(PROSE_SOURCES)) -> tuple[tuple[str, str], ...]:
    """Every distinct prose sentence of ``sources``, as ``(sentence, source)`` pairs in a fixed order (first source
    wins). The first harvest (about a minute) is kept in ``$HF_ROBATTR_CACHE`` (default ``$HF_HOME/hf_robattr``)."""
    sources = _check_sources(sources)
    path = _cache_folder() / f"english_prose-{_versions(sources)}.tsv"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return tuple(tuple(line.rsplit("\t", 1)) for line in lines)  # type: ignore[misc]
    except (OSError, ValueError):
        pass
    pairs = _harvest(sources)
    try:  # written to a temporary file and renamed: concurrent processes never read half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write("\n".join(f"{sentence}\t{source}" for sentence, source in pairs))
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only cache folder only costs the next harvest
    return pairs


def prose_fingerprint(sources: tuple[str, ...] = tuple(PROSE_SOURCES)) -> str:
    """A short hash of :func:`prose_sentences`, to tell which text a conversion saw (it moves with versions)."""
    digest = hashlib.sha256("\n".join(sentence for sentence, _ in prose_sentences(tuple(sources))).encode("utf-8"))
    return digest.hexdigest()[:16]


def english_prose(
    *,
    sources: Iterable[str] = tuple(PROSE_SOURCES),
    seed: int = 0,
    validation_size: float = 0.02,
    test_size: float = 0.02,
) -> DatasetDict:
    """The offline English prose as a :class:`datasets.DatasetDict` with seeded ``train``/``validation``/``test``.

    Columns: ``text`` (one sentence) and ``source`` (one of :data:`PROSE_SOURCES`). ``sources`` selects the sources
    (all by default). The held-out splits are for measuring fidelity on sentences the conversion never saw.

    Example:
        >>> from hf_robattr.data import english_prose
        >>> splits = english_prose(sources=["pydoc_topics"])
        >>> len(splits["train"]) > 500, splits["train"].column_names
        (True, ['text', 'source'])
    """
    sentences = prose_sentences(_check_sources(sources))
    if not sentences:
        raise RuntimeError(f"No English prose found in the installed sources {list(sources)}.")
    dataset = Dataset.from_dict({"text": [s for s, _ in sentences], "source": [src for _, src in sentences]})
    return split_dataset(dataset, validation_size=validation_size, test_size=test_size, seed=seed)
