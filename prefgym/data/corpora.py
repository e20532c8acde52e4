"""Offline training corpora, their segmenters and per-segment scores.

* Code: the standard library's own source (``prefgym.data.stdlib``), one document per file.
* Prose: English from the standard library's docstrings and ``pydoc_data.topics`` (the
  language reference shipped with every Python), one document per docstring/topic.
* Segments: lines for code, rule-based sentences for prose. Segments always concatenate
  back to the exact document, so per-segment scores map onto characters and then tokens.
* Scores per segment come from any prefgym scorer (``scorer.score(prompts, completions)``,
  higher is better); PEP8 has a fast path that checks each file once and attributes
  violations to lines, as Korbak et al. (2023) did.

Example:
    >>> from prefgym.data.corpora import split_lines, split_sentences
    >>> split_lines("a = 1\\nb = 2\\n")
    ['a = 1\\n', 'b = 2\\n']
    >>> split_sentences("It works. Does it? Yes!")
    ['It works. ', 'Does it? ', 'Yes!']
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CORPORA = ("code", "prose")
SPLITS = ("train", "heldout")
# Abbreviations that end with a period but do not end a sentence.
_ABBREVIATIONS = frozenset({"e.g", "i.e", "etc", "vs", "cf", "mr", "mrs", "dr", "no", "st", "fig", "approx"})
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+")


@dataclass
class Document:
    """One training document: its text, where it came from, and (optionally) segment scores."""

    text: str
    source: str
    segments: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # one per segment, higher is better


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` with their newline kept, so ``"".join(split_lines(t)) == t``."""
    return text.splitlines(keepends=True)


def split_sentences(text: str) -> list[str]:
    """Rule-based sentences (end at ``.!?`` + space, or a blank line), whitespace kept with the sentence.

    Abbreviations such as "e.g." and a period after a single letter (an initial) do not end a sentence.
    ``"".join(split_sentences(t)) == t`` always holds.
    """
    cuts: list[int] = []
    for match in _SENTENCE_END.finditer(text):
        word = text[: match.start()].rsplit(None, 1)[-1] if text[: match.start()].strip() else ""
        core = word.lower()
        if text[match.start()] == "." and (core in _ABBREVIATIONS or (len(core) == 1 and core.isalpha())):
            continue
        cuts.append(match.end())
    for match in re.finditer(r"\n\s*\n", text):  # paragraph breaks end a sentence too
        cuts.append(match.end())
    pieces, start = [], 0
    for cut in sorted(set(cuts)):
        if start < cut < len(text):
            pieces.append(text[start:cut])
            start = cut
    pieces.append(text[start:])
    return [p for p in pieces if p]


def segment(text: str, kind: str) -> list[str]:
    """Segments of ``text`` for a corpus kind: lines for ``"code"``, sentences for ``"prose"``."""
    if kind == "code":
        return split_lines(text)
    if kind == "prose":
        return split_sentences(text)
    raise ValueError(f"unknown corpus kind {kind!r}; choose one of {CORPORA}")


def code_documents(split: str | None = "train", max_files: int | None = None) -> list[Document]:
    """Standard-library source files as documents (sorted, deterministic)."""
    from prefgym.data.stdlib import stdlib_dir, stdlib_source_files

    root = stdlib_dir()
    docs = []
    for path in stdlib_source_files(split)[:max_files]:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # a handful of stdlib files are latin-1 test fixtures; skip, do not guess
        if text.strip():
            docs.append(Document(text=text, source=path.relative_to(root).as_posix()))
    return docs


def _clean_docstring(doc: str) -> str:
    # Doctest lines and indented code blocks are code, not prose: keep only the prose lines.
    lines = [ln for ln in inspect.cleandoc(doc).splitlines() if not ln.lstrip().startswith((">>>", "..."))]
    lines = [ln for ln in lines if not ln.startswith("    ")]
    return "\n".join(lines).strip()


def _docstrings(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                cleaned = _clean_docstring(doc)
                if len(cleaned.split()) >= 8:  # one-liners like "Return x." teach little prose
                    found.append(cleaned + "\n")
    return found


def _split_of_name(name: str, heldout_fraction: float = 0.1) -> str:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return "heldout" if int.from_bytes(digest[:4], "big") / 2**32 < heldout_fraction else "train"


def prose_documents(split: str | None = "train", max_files: int | None = None) -> list[Document]:
    """English prose: docstrings of the split's stdlib files, then the split's ``pydoc_data`` topics."""
    docs = []
    for code_doc in code_documents(split, max_files=max_files):
        for i, text in enumerate(_docstrings(code_doc.text)):
            docs.append(Document(text=text, source=f"{code_doc.source}#doc{i}"))
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip pydoc_data; docstrings alone still work
        topics = {}
    for name in sorted(topics):
        if split is None or _split_of_name(name) == split:
            text = topics[name].strip() + "\n"
            docs.append(Document(text=text, source=f"pydoc_data.topics:{name}"))
    return docs


def load_corpus(kind: str, split: str | None = "train", max_files: int | None = None) -> list[Document]:
    """Documents of one corpus (``"code"`` or ``"prose"``), segmented, not yet scored.

    Raises ``ValueError`` if the corpus comes out empty (so training never starts on nothing).
    """
    if kind not in CORPORA:
        raise ValueError(f"unknown corpus {kind!r}; choose one of {CORPORA}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS} or None")
    docs = (code_documents if kind == "code" else prose_documents)(split, max_files=max_files)
    check_nonempty(docs, f"{kind}/{split}")
    for doc in docs:
        doc.segments = segment(doc.text, kind)
    return docs


def check_nonempty(docs: Sequence[Document], name: str) -> None:
    """Raise a clear error when a corpus has no text in it."""
    if not docs or not any(d.text.strip() for d in docs):
        raise ValueError(
            f"corpus {name!r} is empty: no documents with text. Check the split/max_files settings, "
            "or that this Python ships its standard library source (.py files)"
        )


def pep8_line_scores(text: str) -> list[float]:
    """Per-line PEP8 score, ``-violations / len(line)``, from one pycodestyle pass over the whole file.

    Checking the file once (rather than each line alone) keeps context such as indentation and
    blank-line rules right, as in Korbak et al.'s PEP8 dataset.

    Example:
        >>> pep8_line_scores("x=1\\ny = 2\\n")  # E225 once in a 4-char line
        [-0.25, 0.0]
    """
    import pycodestyle

    lines = split_lines(text)
    counts = np.zeros(len(lines))
    style = pycodestyle.Checker(lines=lines, quiet=True)
    offenders: list[int] = []
    counted = style.report_error  # honours pycodestyle's default ignore list; returns None if ignored

    def record(line_number: int, offset: int, message: str, check: Any) -> None:
        if counted(line_number, offset, message, check):
            offenders.append(line_number)

    style.report_error = record  # type: ignore[method-assign]
    try:
        style.check_all()
    except (UnicodeEncodeError, ZeroDivisionError, IndexError, SyntaxError):
        return [0.0] * len(lines)  # pycodestyle crashes on a few odd files; treat as unscored
    for number in offenders:
        if 1 <= number <= len(lines):
            counts[number - 1] += 1
    return [-float(c) / max(len(line), 1) if c else 0.0 for c, line in zip(counts, lines)]


def score_segments(docs: Sequence[Document], scorer: Any = "pep8", batch_size: int = 256) -> None:
    """Fill ``doc.scores`` (one per segment, higher is better) in place.

    ``scorer`` is ``"pep8"`` (the fast whole-file path) or any object with
    ``score(prompts, completions) -> array``; each segment is scored as a completion with an
    empty prompt. Non-finite scores raise ``ValueError`` naming the document.
    """
    if scorer == "pep8":
        for doc in docs:
            doc.scores = pep8_line_scores("".join(doc.segments))
    else:
        flat = [(d, s) for d in docs for s in d.segments]
        values: list[float] = []
        for start in range(0, len(flat), batch_size):
            chunk = [s for _, s in flat[start:start + batch_size]]
            values.extend(np.asarray(scorer.score([""] * len(chunk), chunk), dtype=float).tolist())
        it = iter(values)
        for doc in docs:
            doc.scores = [next(it) for _ in doc.segments]
    for doc in docs:
        if not np.all(np.isfinite(doc.scores)):
            raise ValueError(
                f"scorer returned NaN/inf for a segment of {doc.source!r}; fix the scorer or drop "
                "the document (segment scores must be finite numbers)"
            )


def document_score(doc: Document) -> float:
    """Character-weighted mean of the segment scores (PEP8: -violations per char of the document)."""
    lengths = np.array([len(s) for s in doc.segments], dtype=float)
    if not doc.scores or lengths.sum() == 0:
        raise ValueError(f"document {doc.source!r} has no scores; call score_segments first")
    return float(np.dot(lengths, doc.scores) / lengths.sum())


def corpus_text(docs: Sequence[Document]) -> list[str]:
    """The plain texts of the documents (for tokenizer training)."""
    return [d.text for d in docs]
