"""Corpora: deterministic, non-empty, segments that rebuild the text, finite per-segment scores."""

from __future__ import annotations

import numpy as np
import pytest

from prefgym.data import corpora
from prefgym.data.corpora import Document


def test_split_lines_round_trip_and_count():
    text = "def f(x):\n\treturn x  \n\n# end"
    lines = corpora.split_lines(text)
    assert "".join(lines) == text
    assert len(lines) == 4


@pytest.mark.parametrize("text", [
    "One sentence. Two sentences! A third? Yes.",
    "See e.g. the manual. Version 3. x is set.\n\nNew paragraph without a period\nstill going",
    "",
])
def test_split_sentences_round_trip(text):
    assert "".join(corpora.split_sentences(text)) == text


def test_split_sentences_keeps_abbreviations_together():
    parts = corpora.split_sentences("Use a list, e.g. [1, 2]. Then stop. Done")
    assert parts == ["Use a list, e.g. [1, 2]. ", "Then stop. ", "Done"]


def test_pep8_line_scores_attribute_violations_to_lines():
    scores = corpora.pep8_line_scores("import os\nx=1\ny = 2\n")
    assert scores[0] == 0.0 and scores[2] == 0.0
    assert scores[1] == pytest.approx(-1 / len("x=1\n"))  # E225 once


def test_code_corpus_is_deterministic_and_split_disjoint():
    train = corpora.load_corpus("code", "train", max_files=5)
    again = corpora.load_corpus("code", "train", max_files=5)
    held = corpora.load_corpus("code", "heldout", max_files=5)
    assert [d.source for d in train] == [d.source for d in again]
    assert not {d.source for d in train} & {d.source for d in held}
    assert all("".join(d.segments) == d.text for d in train)


def test_prose_corpus_has_english_sentences():
    docs = corpora.load_corpus("prose", "train", max_files=3)
    assert any(d.source.startswith("pydoc_data") for d in docs)
    words = " ".join(d.text for d in docs).split()
    assert len(words) > 1000 and "the" in words


def test_score_segments_with_any_scorer_and_document_score():
    class LengthScorer:
        def score(self, prompts, completions):
            return -np.array([len(c) for c in completions], dtype=float)

    doc = Document(text="ab\ncdef\n", source="x")
    doc.segments = corpora.split_lines(doc.text)
    corpora.score_segments([doc], LengthScorer())
    assert doc.scores == [-3.0, -5.0]
    assert corpora.document_score(doc) == pytest.approx((3 * -3 + 5 * -5) / 8)


def test_nan_scores_are_refused_with_the_document_named():
    class NaNScorer:
        def score(self, prompts, completions):
            return np.full(len(completions), np.nan)

    doc = Document(text="a\n", source="broken.py", segments=["a\n"])
    with pytest.raises(ValueError, match="NaN/inf.*broken.py"):
        corpora.score_segments([doc], NaNScorer())


def test_empty_corpus_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        corpora.check_nonempty([Document(text="  \n", source="blank")], "code/train")
    with pytest.raises(ValueError, match="unknown corpus"):
        corpora.load_corpus("poetry")
