"""The offline English prose: sentences that read as prose, from installed files, cached, seeded splits."""

import textwrap

import pytest

from hf_robattr.data import prose


FAST = ("pydoc_topics", "sklearn_descriptions")


def test_sources_give_prose_sentences_in_seeded_disjoint_splits():
    splits = prose.english_prose(sources=FAST, seed=0)
    texts = {name: list(split["text"]) for name, split in splits.items()}
    assert len(texts["train"]) > 500 and set(splits["train"]["source"]) == set(FAST)
    assert not set(texts["train"]) & set(texts["test"]) and not set(texts["validation"]) & set(texts["test"])
    for sentence in texts["train"][:2000]:
        assert prose._is_prose(sentence) and "\t" not in sentence
        assert not any(mark in sentence for mark in (">>>", "==", "()", "_", "`")), sentence
    assert list(prose.english_prose(sources=FAST, seed=0)["test"]["text"]) == texts["test"]
    assert list(prose.english_prose(sources=FAST, seed=1)["test"]["text"]) != texts["test"]


def test_docstrings_and_comments_are_read_from_source_files(tmp_path):
    (tmp_path / "module.py").write_text(
        textwrap.dedent('''
        """The module reads the weather report every morning. Set x = 1 first."""

        # We open the window when the room gets too warm.
        # The cat does not like it at all.
        def f():
            """Return the number of apples in the basket on the table."""
            return 1  # short
    ''')
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_skipped.py").write_text('"""This docstring sits in a test folder and is skipped."""')
    docstrings = [s for text in prose._docstrings(tmp_path) for s in prose._sentences(text)]
    comments = [s for text in prose._comments(tmp_path) for s in prose._sentences(text)]
    assert docstrings == ["The module reads the weather report every morning.",
                          "Return the number of apples in the basket on the table."]  # fmt: skip
    assert comments == ["We open the window when the room gets too warm.", "The cat does not like it at all."]


def test_harvest_is_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ROBATTR_CACHE", str(tmp_path))
    prose.prose_sentences.cache_clear()
    first = prose.prose_sentences(("sklearn_descriptions",))
    assert len(list(tmp_path.glob("english_prose-*.tsv"))) == 1
    prose.prose_sentences.cache_clear()
    monkeypatch.setattr(prose, "_harvest", lambda sources: pytest.fail("harvested again"))
    assert prose.prose_sentences(("sklearn_descriptions",)) == first
    prose.prose_sentences.cache_clear()


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match=r"sources must be a non-empty selection of \['pydoc_topics'"):
        prose.english_prose(sources=["wikipedia"])
