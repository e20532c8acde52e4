"""Scored documents -> token streams with per-token scores -> fixed-length training blocks.

Each token gets the score of the segment (line / sentence) its last character falls in,
so a segment-level preference becomes a token-level one, as in Korbak et al. (2023).
``segment_start`` marks the first token of each segment: conditional training puts its
control token there, inserting token ids into the plain tokenization (so text without
control tokens tokenizes exactly as the model saw it).

Example:
    >>> from prefgym.data.corpora import Document
    >>> from prefgym.tokenization import load_tokenizer
    >>> tok = load_tokenizer("prefgym/bpe-8k")
    >>> doc = Document("x = 1\\ny=2\\n", "d", ["x = 1\\n", "y=2\\n"], [0.0, -0.25])
    >>> td = tokenize_documents([doc], tok)[0]
    >>> float(td.scores[0]), float(td.scores[-2]), bool(td.ids[-1] == tok.eos_token_id)
    (0.0, -0.25, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class TokenizedDocument:
    """A document as token ids (EOS-terminated) with one score and one segment-start flag per token."""

    ids: np.ndarray  # (N,) int64
    scores: np.ndarray  # (N,) float32, higher is better
    segment_start: np.ndarray  # (N,) bool
    doc_score: float  # character-weighted mean of the segment scores
    source: str = ""


def tokenize_documents(docs: Sequence[Any], tokenizer: Any) -> list[TokenizedDocument]:
    """Tokenize scored ``Document``s (see ``prefgym.data.corpora``); unscored ones get score 0."""
    out = []
    texts = ["".join(d.segments) if d.segments else d.text for d in docs]
    encoded = tokenizer(texts, return_offsets_mapping=True, add_special_tokens=False)
    for doc, text, ids, offsets in zip(docs, texts, encoded["input_ids"], encoded["offset_mapping"]):
        segments = doc.segments or [text]
        seg_scores = np.asarray(doc.scores if doc.scores else [0.0] * len(segments), dtype=np.float32)
        if len(seg_scores) != len(segments):
            raise ValueError(f"{doc.source!r}: {len(seg_scores)} scores for {len(segments)} segments")
        if not np.all(np.isfinite(seg_scores)):
            raise ValueError(f"{doc.source!r} has NaN/inf segment scores; rescore it or drop it")
        bounds = np.cumsum([len(s) for s in segments])  # (S,) end offset of each segment
        # A token belongs to the segment of its LAST character: byte-level BPE merges a newline
        # with the next line's indentation ("\n        "), and that token decides line N+1's
        # indentation, so it must carry line N+1's score (and follow line N+1's control token).
        lasts = np.array([max(o[1] - 1, o[0]) for o in offsets], dtype=np.int64)  # (N,)
        seg_of_token = np.minimum(np.searchsorted(bounds, lasts, side="right"), len(segments) - 1)
        first = np.ones(len(ids), dtype=bool)
        first[1:] = seg_of_token[1:] != seg_of_token[:-1]
        lengths = np.array([len(s) for s in segments], dtype=np.float64)
        doc_score = float(np.dot(lengths, seg_scores) / max(lengths.sum(), 1.0))
        # EOS closes the document; it inherits the last segment's score.
        eos = tokenizer.eos_token_id
        out.append(TokenizedDocument(
            ids=np.append(np.asarray(ids, dtype=np.int64), eos),
            scores=np.append(seg_scores[seg_of_token], seg_scores[-1]).astype(np.float32),
            segment_start=np.append(first, False),
            doc_score=doc_score,
            source=doc.source,
        ))
    return out


def strip_tokens(doc: TokenizedDocument, token_ids: Sequence[int]) -> TokenizedDocument:
    """A copy of ``doc`` without the given token ids (e.g. control tokens)."""
    keep = ~np.isin(doc.ids, np.asarray(token_ids))
    return TokenizedDocument(doc.ids[keep], doc.scores[keep], doc.segment_start[keep], doc.doc_score, doc.source)


def make_blocks(docs: Sequence[TokenizedDocument], block_size: int) -> dict[str, np.ndarray]:
    """Concatenate documents and cut into non-overlapping blocks of ``block_size + 1`` tokens.

    Returns ``input_ids`` (B, T), ``labels`` (B, T) and ``token_scores`` (B, T), where
    ``token_scores[b, t]`` is the score of ``labels[b, t]``, the token being predicted.
    The last partial block is dropped. Raises ``ValueError`` if not even one block fits.
    """
    if not docs:
        raise ValueError("no documents to make training blocks from (empty corpus, or every document filtered)")
    ids = np.concatenate([d.ids for d in docs])  # (N,)
    scores = np.concatenate([d.scores for d in docs])  # (N,)
    n_blocks = len(ids) // (block_size + 1)
    if n_blocks == 0:
        raise ValueError(
            f"corpus has {len(ids)} tokens, fewer than one block of {block_size + 1}; "
            "use more documents or a smaller block size"
        )
    cut = n_blocks * (block_size + 1)
    ids = ids[:cut].reshape(n_blocks, block_size + 1)  # (B, T+1)
    scores = scores[:cut].reshape(n_blocks, block_size + 1)  # (B, T+1)
    return {"input_ids": ids[:, :-1], "labels": ids[:, 1:], "token_scores": scores[:, 1:]}


def batch_indices(n_blocks: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Block indices of the batch at ``step``: a fresh seeded permutation each epoch.

    Depends only on (step, seed), so a resumed run sees exactly the batches it would have.
    """
    per_epoch = max(n_blocks // batch_size, 1)
    epoch, index = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_blocks)
    return order[index * batch_size:(index + 1) * batch_size] if n_blocks >= batch_size else order
