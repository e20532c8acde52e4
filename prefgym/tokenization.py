"""Tokenizers by name: built-in ones shipped with prefgym, or any HF tokenizer by path or name.

Built-in names:
  * ``prefgym/toy-chars`` — a character-level tokenizer over ``a-z``, space, ``.,\\n`` and
    digits, built in code (no files). Tiny vocabulary, for toy envs and fast learning tests.
  * ``prefgym/bpe-8k`` — byte-level BPE trained by prefgym's own recipe on the Python
    standard library's source and English prose (see ``prefgym.models.tokenizer``), shipped
    under ``prefgym/assets/tokenizers/bpe-8k``.

Anything else goes to ``transformers.AutoTokenizer.from_pretrained`` (a local directory, or a
hub name already in the local cache).

Example:
    >>> from prefgym.tokenization import load_tokenizer
    >>> tok = load_tokenizer("prefgym/toy-chars")
    >>> tok.decode(tok("ab a")["input_ids"])
    'ab a'
"""

from __future__ import annotations

import functools
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

EOS_TOKEN = "<|endoftext|>"
GOOD_TOKEN = "<|good|>"
BAD_TOKEN = "<|bad|>"
CONTROL_TOKENS = (GOOD_TOKEN, BAD_TOKEN)
TOY_ALPHABET = string.ascii_lowercase + string.digits + " .,\n"

ASSETS = Path(__file__).parent / "assets"


def builtin_asset_dir(name: str) -> Path | None:
    """Directory of a shipped asset ``prefgym/<x>``: a tokenizer or a base model (which holds its tokenizer)."""
    if not name.startswith("prefgym/"):
        return None
    short = name.split("/", 1)[1]
    for kind in ("tokenizers", "models"):
        path = ASSETS / kind / short
        if path.is_dir():
            return path
    return None


def builtin_names(kind: str) -> list[str]:
    """Names of the shipped assets of one kind (``"tokenizers"`` or ``"models"``)."""
    root = ASSETS / kind
    return sorted(f"prefgym/{p.name}" for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def load_tokenizer(name_or_path: "str | PreTrainedTokenizerBase") -> "PreTrainedTokenizerBase":
    """Return a tokenizer for a built-in name, a local path, a cached hub name, or pass one through.

    The result always has a pad token (the EOS token when the tokenizer had none).
    """
    if not isinstance(name_or_path, (str, Path)):
        if not hasattr(name_or_path, "convert_ids_to_tokens"):
            raise TypeError(
                f"expected a tokenizer name/path or a transformers tokenizer, got {type(name_or_path).__name__}"
            )
        return _with_pad(name_or_path)
    name = str(name_or_path)
    if name == "prefgym/toy-chars":
        return _toy_char_tokenizer()
    builtin = builtin_asset_dir(name)
    if builtin is not None:
        return _load_pretrained(str(builtin))
    if name.startswith("prefgym/"):
        known = ["prefgym/toy-chars", *builtin_names("tokenizers"), *builtin_names("models")]
        raise ValueError(f"unknown built-in tokenizer {name!r}; built-in tokenizers are {known}")
    return _load_pretrained(name)


@functools.lru_cache(maxsize=16)
def _load_pretrained(name_or_path: str) -> "PreTrainedTokenizerBase":
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise OSError(
            f"could not load a tokenizer from {name_or_path!r}: pass a local directory with "
            f"tokenizer files, a hub name already in the local HF cache, or a built-in name "
            f"('prefgym/toy-chars', or one under prefgym/assets). Cause: {err}"
        ) from err
    return _with_pad(tok)


@functools.lru_cache(maxsize=1)
def _toy_char_tokenizer() -> "PreTrainedTokenizerFast":  # noqa: F821
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {EOS_TOKEN: 0, GOOD_TOKEN: 1, BAD_TOKEN: 2, "<|unk|>": 3}
    for ch in TOY_ALPHABET:
        vocab[ch] = len(vocab)
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|unk|>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        unk_token="<|unk|>",
        additional_special_tokens=list(CONTROL_TOKENS),
    )


def _with_pad(tok: Any) -> Any:
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ValueError(
                "tokenizer has neither a pad nor an EOS token; add one "
                "(tok.add_special_tokens({'eos_token': '<|endoftext|>'})) before using it in prefgym"
            )
        tok.pad_token = tok.eos_token
    return tok
