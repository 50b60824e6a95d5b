"""Real English prose that ships with Python and the project's dependencies: the offline default conversion text.

Attention transfer needs real language, not generated word salad, and it must run offline. Three sources are always
installed with hf_robattr:

* ``pydoc_topics``: the Python language reference and library topics that ``pydoc`` shows
  (``pydoc_data.topics``, part of the standard library);
* ``stdlib_docstrings``: the docstrings of a fixed list of standard-library modules, their classes and functions;
* ``sklearn_descriptions``: scikit-learn's descriptions of its bundled data sets (``sklearn/datasets/descr``).

Text is cut into sentences, and only sentences that read as prose are kept: 6 to 40 words, starting with a capital
letter, ending with ``.``, ``!`` or ``?``, mostly alphabetic words, no code (``>>>``, ``=``, brackets, dotted names,
underscores). The result is deterministic for a Python and scikit-learn version; its ``fingerprint`` names it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from datasets import Dataset, DatasetDict

from hf_robattr.data import split_dataset


__all__ = ["PROSE_SOURCES", "english_prose", "prose_fingerprint", "prose_sentences"]

# Standard-library modules whose docstrings are harvested. An allowlist, not ``sys.stdlib_module_names``: some
# modules act on import (``antigravity`` opens a browser, ``this`` prints) and some need a GUI.
STDLIB_MODULES = (
    "abc", "argparse", "array", "ast", "asyncio", "base64", "bisect", "bz2", "calendar", "cmath", "codecs",
    "collections", "colorsys", "concurrent.futures", "configparser", "contextlib", "copy", "csv", "dataclasses",
    "datetime", "decimal", "difflib", "dis", "email.message", "enum", "filecmp", "fnmatch", "fractions", "ftplib",
    "functools", "getopt", "gettext", "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac", "html.parser",
    "http.client", "http.cookies", "http.server", "imaplib", "inspect", "io", "ipaddress", "itertools", "json",
    "keyword", "linecache", "locale", "logging", "logging.handlers", "lzma", "mailbox", "math", "mimetypes",
    "multiprocessing", "numbers", "operator", "optparse", "os", "pathlib", "pickle", "pkgutil", "platform",
    "plistlib", "poplib", "pprint", "queue", "random", "re", "reprlib", "sched", "secrets", "selectors", "shelve",
    "shlex", "shutil", "signal", "smtplib", "socket", "socketserver", "sqlite3", "ssl", "statistics", "string",
    "struct", "subprocess", "symtable", "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize",
    "trace", "traceback", "types", "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "warnings",
    "wave", "weakref", "xml.dom.minidom", "xml.etree.ElementTree", "zipfile", "zlib", "zoneinfo",
)  # fmt: skip

MIN_WORDS, MAX_WORDS = 6, 40
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
# Anything that marks code, markup or a reference rather than prose.
_NOT_PROSE = re.compile(r"[<>{}\[\]=_`|\\#*~^$@/]|::|\.\.|\(\)|\b\w+\.\w+\b|\d\.\d|\s-\w|\w\(")


def _pydoc_topics() -> Iterator[str]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some minimal Python builds leave pydoc_data out
        return
    for name in sorted(topics):
        yield topics[name]


def _docstrings(module_name: str) -> Iterator[str]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # e.g. a Python built without sqlite3 or ssl
        return
    yield module.__doc__ or ""
    for name, member in sorted(vars(module).items()):
        if name.startswith("_") or getattr(member, "__module__", None) != module.__name__:
            continue
        yield getattr(member, "__doc__", None) or ""
        if inspect.isclass(member):
            for attribute_name, attribute in sorted(vars(member).items()):
                doc = getattr(attribute, "__doc__", None)
                # skip docstrings inherited from the attribute's type (every int says "int([x]) -> integer ...")
                if not attribute_name.startswith("_") and doc and doc is not getattr(type(attribute), "__doc__", None):
                    yield doc


def _stdlib_docstrings() -> Iterator[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module_name in STDLIB_MODULES:
            for doc in _docstrings(module_name):
                if isinstance(doc, str):
                    yield doc


def _sklearn_descriptions() -> Iterator[str]:
    import sklearn

    for path in sorted((Path(sklearn.__file__).parent / "datasets" / "descr").glob("*.rst")):
        yield path.read_text(encoding="utf-8")


PROSE_SOURCES = {
    "pydoc_topics": _pydoc_topics,
    "stdlib_docstrings": _stdlib_docstrings,
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
            if _is_prose(sentence.strip()):
                yield sentence.strip()


@functools.lru_cache(maxsize=1)
def prose_sentences() -> tuple[tuple[str, str], ...]:
    """Every distinct prose sentence, as ``(sentence, source)`` pairs in a fixed order (first source wins)."""
    seen: dict[str, str] = {}
    for source, texts in PROSE_SOURCES.items():
        for text in texts():
            for sentence in _sentences(text):
                seen.setdefault(sentence, source)
    return tuple(seen.items())


def prose_fingerprint() -> str:
    """A short hash of :func:`prose_sentences`, to tell which text a conversion saw (it moves with Python versions)."""
    digest = hashlib.sha256("\n".join(sentence for sentence, _ in prose_sentences()).encode("utf-8"))
    return digest.hexdigest()[:16]


def english_prose(*, seed: int = 0, validation_size: float = 0.05, test_size: float = 0.05) -> DatasetDict:
    """The offline English prose as a :class:`datasets.DatasetDict` with seeded ``train``/``validation``/``test``.

    Columns: ``text`` (one sentence) and ``source`` (one of :data:`PROSE_SOURCES`). The held-out splits are for
    measuring fidelity on sentences that the conversion never saw.

    Example::

        >>> from hf_robattr.conversion import english_prose
        >>> splits = english_prose()
        >>> len(splits["train"]) > 1000
        True
    """
    sentences = prose_sentences()
    if not sentences:
        raise RuntimeError("No English prose found in the installed packages (pydoc_data, stdlib, scikit-learn).")
    dataset = Dataset.from_dict({"text": [s for s, _ in sentences], "source": [src for _, src in sentences]})
    return split_dataset(dataset, validation_size=validation_size, test_size=test_size, seed=seed)
