"""Control tokens for conditional training: ids, sampling masks and generation kwargs.

A conditionally trained model (Korbak et al. 2023) learns ``<|good|>``/``<|bad|>`` before
each segment. To sample aligned text: start with ``<|good|>`` and never sample ``<|bad|>``
(the model may still emit ``<|good|>`` before each new line, which conditions every line;
decode with ``skip_special_tokens=True`` to remove it). ``block="all"`` blocks both.

Example:
    >>> from prefgym.tokenization import load_tokenizer
    >>> tok = load_tokenizer("prefgym/bpe-8k")
    >>> control_token_ids(tok)
    (1, 2)
    >>> bad_words_ids(tok)
    [[2]]
"""

from __future__ import annotations

from typing import Any

from prefgym.tokenization import BAD_TOKEN, GOOD_TOKEN


def control_token_ids(tokenizer: Any) -> tuple[int, int]:
    """``(good_id, bad_id)``; a clear error when the tokenizer lacks the control tokens."""
    ids = []
    for token in (GOOD_TOKEN, BAD_TOKEN):
        tid = tokenizer.convert_tokens_to_ids(token)
        unk = getattr(tokenizer, "unk_token_id", None)
        if tid is None or (unk is not None and tid == unk) or token not in tokenizer.get_vocab():
            raise ValueError(
                f"tokenizer has no {token!r} token, which conditional training needs. Use prefgym/bpe-8k "
                f"(it reserves {GOOD_TOKEN!r} and {BAD_TOKEN!r}), or add them: "
                f"tokenizer.add_special_tokens({{'additional_special_tokens': ['{GOOD_TOKEN}', '{BAD_TOKEN}']}}) "
                "and model.resize_token_embeddings(len(tokenizer))"
            )
        ids.append(int(tid))
    return ids[0], ids[1]


def blocked_ids(tokenizer: Any, block: str = "bad") -> list[int]:
    """Token ids never to sample: ``"bad"`` (the paper's choice) or ``"all"`` control tokens."""
    if block not in ("bad", "all"):
        raise ValueError(f"block must be 'bad' or 'all', got {block!r}")
    good, bad = control_token_ids(tokenizer)
    return [bad] if block == "bad" else [good, bad]


def bad_words_ids(tokenizer: Any, block: str = "bad") -> list[list[int]]:
    """``bad_words_ids`` for ``model.generate`` that keep control tokens out of samples."""
    return [[i] for i in blocked_ids(tokenizer, block)]


def mask_logits(logits: Any, token_ids: list[int]) -> Any:
    """Logits with ``token_ids`` set to -inf (for samplers that do not use ``generate``)."""
    logits = logits.clone()
    logits[..., token_ids] = float("-inf")  # (..., V)
    return logits


def conditional_prompt(prompt: str, prefix_first: bool = False) -> str:
    """The prompt a conditional model sees: ``<|good|>`` before it (PHF's unconditional scenario)
    or after it (``prefix_first=True``, PHF's ``prompt_before_control`` for prompted code)."""
    return prompt + GOOD_TOKEN if prefix_first else GOOD_TOKEN + prompt


def is_conditional(model: Any) -> bool:
    """Whether ``model`` was trained with control tokens (``prefgym pretrain`` records it in the config)."""
    return bool(getattr(model.config, "prefgym_conditional", False))
