"""prefgym's own byte-level BPE tokenizer, trained offline with HF ``tokenizers``.

Byte-level BPE without a prefix space round-trips any text exactly (indentation, tabs,
trailing spaces, unicode), which a code task needs: ``decode(encode(x)) == x``.
The EOS/pad token and the conditional-training control tokens get fixed ids 0, 1, 2.

Recipe for the shipped ``prefgym/bpe-8k``:
    $ python -m prefgym.models.tokenizer prefgym/assets/tokenizers/bpe-8k

Example:
    >>> from prefgym.models.tokenizer import train_bpe_tokenizer
    >>> tok = train_bpe_tokenizer(["def f(x):\\n    return x\\n"] * 20, vocab_size=300)
    >>> tok.decode(tok("def g(y):\\n\\treturn  y")["input_ids"])
    'def g(y):\\n\\treturn  y'
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prefgym.tokenization import BAD_TOKEN, EOS_TOKEN, GOOD_TOKEN

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = (EOS_TOKEN, GOOD_TOKEN, BAD_TOKEN)  # ids 0, 1, 2
DEFAULT_VOCAB_SIZE = 8192


def train_bpe_tokenizer(texts: Sequence[str], vocab_size: int = DEFAULT_VOCAB_SIZE) -> "PreTrainedTokenizerFast":
    """Train a byte-level BPE on ``texts`` and wrap it as a transformers fast tokenizer.

    Deterministic for the same texts in the same order.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts or not any(t.strip() for t in texts):
        raise ValueError("cannot train a tokenizer on an empty corpus; pass at least one non-empty text")
    core = Tokenizer(models.BPE())
    # add_prefix_space=False: a leading space would be invented on decode and break round trips.
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(list(texts), trainer=trainer, length=len(texts))
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=EOS_TOKEN,
        bos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        unk_token=None,
        additional_special_tokens=[GOOD_TOKEN, BAD_TOKEN],
        clean_up_tokenization_spaces=False,  # the default "cleanup" rewrites " ." etc.: not a round trip
        model_max_length=1_000_000,
    )


def recipe_texts(max_files: int | None = None) -> list[str]:
    """The shipped tokenizer's training texts: stdlib code (train split) then English prose (train split)."""
    from prefgym.data.corpora import corpus_text, load_corpus

    return corpus_text(load_corpus("code", "train", max_files)) + corpus_text(load_corpus("prose", "train", max_files))


def vocab_sha256(tok: "PreTrainedTokenizerFast") -> str:
    """A checksum of the vocabulary and merges (same recipe + same Python -> same checksum)."""
    blob = json.loads(tok.backend_tokenizer.to_str())["model"]
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def build_shipped_tokenizer(out_dir: str | Path, vocab_size: int = DEFAULT_VOCAB_SIZE) -> str:
    """Train on the recipe corpus, ``save_pretrained`` into ``out_dir``, write RECIPE.json; return the checksum."""
    from prefgym.utils.io import atomic_write_json

    tok = train_bpe_tokenizer(recipe_texts(), vocab_size=vocab_size)
    out = Path(out_dir)
    tok.save_pretrained(out)
    digest = vocab_sha256(tok)
    atomic_write_json(out / "RECIPE.json", {
        "command": f"python -m prefgym.models.tokenizer {out_dir} --vocab-size {vocab_size}",
        "corpus": "stdlib source (train split) + stdlib docstrings and pydoc_data.topics (train split)",
        "python": sys.version.split()[0],
        "vocab_size": len(tok),
        "vocab_sha256": digest,
    })
    return digest


def main(argv: list[str] | None = None) -> int:
    """``python -m prefgym.models.tokenizer OUT_DIR [--vocab-size N]``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    args = parser.parse_args(argv)
    print(build_shipped_tokenizer(args.out_dir, args.vocab_size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
