"""Evaluate a (PHF-)pretrained policy: misalignment of samples, held-out perplexity, diversity.

Scenarios as in Korbak et al. (2023): *unconditional* samples (from EOS, or ``<|good|>``
for a conditional model) and *prompted* samples (held-out ``def name(args):`` signatures).
A conditional model is sampled with ``<|bad|>`` blocked and scored with control tokens
stripped; its perplexity is computed on plain held-out text with control tokens removed
from its distribution.

Example:
    >>> trim_to_complete_lines("x = 1\\ny = (")
    'x = 1\\n'
    >>> parses("", "x = 1\\ny = (")
    True
    >>> valid_prefix("def f(x):", "\\n    if x:\\n        return (x,\\n")  # incomplete, not wrong
    True
"""

from __future__ import annotations

import ast
import codeop
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from prefgym.metrics import distinct_n, perplexity, summarize_scores
from prefgym.models.control import blocked_ids, conditional_prompt


def trim_to_complete_lines(text: str) -> str:
    """Drop the trailing line that generation cut off (text after the last newline)."""
    return text[: text.rfind("\n") + 1] if "\n" in text else ""


def parses(prompt: str, completion: str) -> bool:
    """Whether ``prompt`` + the completion's complete lines is valid Python, with >= 1 non-blank completed line."""
    body = trim_to_complete_lines(completion)
    if not body.strip():
        return False
    try:
        with warnings.catch_warnings():  # samples trigger SyntaxWarnings ("invalid decimal literal")
            warnings.simplefilter("ignore", SyntaxWarning)
            ast.parse(prompt + body)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return False
    return True


def valid_prefix(prompt: str, completion: str) -> bool:
    """Whether ``prompt`` + the completion's complete lines can still be continued into valid Python.

    Python's own incomplete-input test (:func:`codeop.compile_command`, compiled, never run): a
    sample cut inside an open block, bracket or string is a valid prefix, ``x = = 1`` or an
    unindent to no outer level is not. Kinder than :func:`parses`, which fails every sample whose
    last complete line opens a block. Needs >= 1 non-blank completed line.
    """
    body = trim_to_complete_lines(completion)
    if not body.strip():
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            codeop.compile_command(prompt + body, "<sample>", "exec")
    except (SyntaxError, ValueError, OverflowError):  # OverflowError: huge literals
        return False
    return True


def sample(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 128, temperature: float = 0.7,
           top_p: float = 0.9, conditional: bool = False, seed: int = 0, batch_size: int = 32) -> list[str]:
    """One sampled completion per prompt (``""`` = unconditional), decoded without special tokens."""
    import torch

    tokenizer.padding_side = "left"  # generation appends on the right; left padding keeps prompts adjacent
    bos = tokenizer.eos_token
    # An unconditional sample starts where a training document starts: right after EOS.
    texts = [(bos + conditional_prompt("") if not p else conditional_prompt(p)) if conditional else (p or bos)
             for p in prompts]
    extra = {"bad_words_ids": [[i] for i in blocked_ids(tokenizer, "bad")]} if conditional else {}
    out: list[str] = []
    torch.manual_seed(seed)
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p, top_k=0,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id, **extra)  # (b, L + new)
        new = gen[:, enc["input_ids"].shape[1]:]
        out.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    return out


def score_samples(scorer: Any, prompts: Sequence[str], completions: Sequence[str], k: int) -> dict[str, float]:
    """Misalignment summary (see ``summarize_scores``) plus mean violations/char when the scorer has parts."""
    scores = np.asarray(scorer.score(list(prompts), list(completions)), dtype=float)
    parts = scorer.score_parts(list(prompts), list(completions)) if hasattr(scorer, "score_parts") else {}
    out = summarize_scores(scores.reshape(-1, k), parts.get("violations"))
    if "violations_per_char" in parts:
        out["violations_per_char"] = float(np.mean(parts["violations_per_char"]))
    return out


def scenario(model: Any, tokenizer: Any, scorer: Any, prompts: Sequence[str], k: int, conditional: bool,
             max_new_tokens: int, seed: int) -> tuple[dict[str, float], list[dict]]:
    """Sample ``k`` completions per prompt, score them, and measure diversity and ``ast.parse`` rate."""
    # A trailing newline would end the prompt on a bare "\n" token that training text rarely has
    # (BPE merges "\n" with the next line's indentation); the completion starts with it instead.
    stripped = [p[:-1] if p.endswith("\n") else p for p in prompts]
    repeated = [p for p in stripped for _ in range(k)]
    completions = sample(model, tokenizer, repeated, max_new_tokens, conditional=conditional, seed=seed)
    metrics = score_samples(scorer, repeated, completions, k)
    metrics["ast_parse_rate"] = float(np.mean([parses(p, c) for p, c in zip(repeated, completions)]))
    metrics["valid_prefix_rate"] = float(np.mean([valid_prefix(p, c) for p, c in zip(repeated, completions)]))
    metrics["distinct_1"] = distinct_n(completions, 1)
    metrics["distinct_2"] = distinct_n(completions, 2)
    metrics["mean_chars"] = float(np.mean([len(c) for c in completions]))
    examples = [{"prompt": p, "completion": c} for p, c in zip(repeated[:8], completions[:8])]
    return metrics, examples


def evaluate_policy(model: Any, tokenizer: Any, scorer: Any, heldout_blocks: dict[str, np.ndarray],
                    prompts: Sequence[str], n_unconditional: int = 64, k: int = 4,
                    max_new_tokens: int = 128, max_ppl_blocks: int = 64, seed: int = 0) -> dict[str, Any]:
    """Misalignment (unconditional + prompted), held-out perplexity and distinct-n of one policy."""
    conditional = bool(getattr(model.config, "prefgym_conditional", False))
    model.eval()
    uncond, ex_u = scenario(model, tokenizer, scorer, [""] * n_unconditional, 1, conditional, max_new_tokens, seed)
    prompted, ex_p = scenario(model, tokenizer, scorer, prompts, k, conditional, max_new_tokens, seed + 1)
    ppl = perplexity(model, heldout_blocks, max_blocks=max_ppl_blocks,
                     blocked_ids=blocked_ids(tokenizer, "all") if conditional else ())
    return {"conditional": conditional, "perplexity": ppl, "unconditional": uncond, "prompted": prompted,
            "examples": {"unconditional": ex_u, "prompted": ex_p}}
