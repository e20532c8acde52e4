"""The BPE recipe: exact round trips, fixed special-token ids, determinism, and the shipped files."""

from __future__ import annotations

import pytest

from prefgym.models.tokenizer import train_bpe_tokenizer, vocab_sha256
from prefgym.tokenization import BAD_TOKEN, EOS_TOKEN, GOOD_TOKEN, load_tokenizer

TEXTS = ["def f(x):\n    return x + 1\n", "The cat sat on the mat. It was happy.\n"] * 30
TRICKY = ["\tif a:\n\t\tpass  \n", "  x = 'é ü 中'  # trailing   \n\n\n", " leading space", "a\r\nb"]


def test_round_trip_and_special_ids():
    tok = train_bpe_tokenizer(TEXTS, vocab_size=400)
    for text in TRICKY:
        assert tok.decode(tok(text)["input_ids"]) == text
    assert tok.convert_tokens_to_ids([EOS_TOKEN, GOOD_TOKEN, BAD_TOKEN]) == [0, 1, 2]
    assert tok.pad_token == EOS_TOKEN
    assert tok(GOOD_TOKEN + "x")["input_ids"][0] == 1  # control tokens are atomic


def test_training_is_deterministic():
    assert vocab_sha256(train_bpe_tokenizer(TEXTS, 400)) == vocab_sha256(train_bpe_tokenizer(TEXTS, 400))


def test_empty_corpus_refused():
    with pytest.raises(ValueError, match="empty corpus"):
        train_bpe_tokenizer(["", "  "])


def test_shipped_bpe_8k_round_trips_code():
    tok = load_tokenizer("prefgym/bpe-8k")
    assert len(tok) == 8192
    source = open(__file__, encoding="utf-8").read()
    assert tok.decode(tok(source)["input_ids"]) == source
    assert tok.convert_tokens_to_ids([GOOD_TOKEN, BAD_TOKEN]) == [1, 2]
