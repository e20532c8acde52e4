"""Prompt sets with named splits (``train`` / ``eval``), all built offline.

A prompt spec (an env's ``prompts`` kwarg) is one of:
  * a list of strings (used for both splits),
  * a dict of split name -> list of strings,
  * a path to a JSONL file with a ``prompt`` field and an optional ``split`` field,
  * a Hydra ``{"_target_": ...}`` dict naming a function that returns one of the above —
    the built-ins below, or :func:`hf_dataset` for a HF ``datasets`` split.

Example:
    >>> from prefgym.data.prompts import load_prompts
    >>> load_prompts({"train": ["a", "b"], "eval": ["c"]})["eval"]
    ['c']
    >>> len(load_prompts({"_target_": "prefgym.data.prompts.arithmetic_prompts"})["train"])
    2000
"""

from __future__ import annotations

import functools
import json
import random
import re
from pathlib import Path
from typing import Any

from prefgym.data.stdlib import split_of, stdlib_dir, stdlib_source_files

Splits = dict[str, list[str]]
SPLIT_NAMES = ("train", "eval")

# A one-line top-level signature: `def name(args):` or `def name(args) -> T:`.
_SIGNATURE = re.compile(r"^def [A-Za-z_]\w*\(.*\)(?: -> [^:]+)?:[ \t]*$")


def load_prompts(spec: Any) -> Splits:
    """Resolve a prompt spec into ``{"train": [...], "eval": [...]}`` (see the module docstring)."""
    if isinstance(spec, dict) and "_target_" in spec:
        from prefgym.utils.config import instantiate

        return load_prompts(instantiate(spec))
    if isinstance(spec, (str, Path)):
        return _from_jsonl(Path(spec))
    if isinstance(spec, (list, tuple)):
        prompts = _check_strings(list(spec), "prompts")
        return {"train": prompts, "eval": prompts}
    if isinstance(spec, dict):
        unknown = set(spec) - set(SPLIT_NAMES)
        if unknown or "train" not in spec:
            raise ValueError(
                f"a prompt dict needs a 'train' split and at most {SPLIT_NAMES}; got keys {sorted(spec)}"
            )
        splits = {name: _check_strings(list(spec[name]), f"prompts[{name!r}]") for name in spec}
        splits.setdefault("eval", splits["train"])
        return splits
    raise TypeError(
        f"cannot build prompts from {type(spec).__name__}: pass a list of strings, a dict of "
        "splits, a JSONL path or a {'_target_': ...} dict"
    )


def _check_strings(prompts: list, what: str) -> list[str]:
    if not prompts:
        raise ValueError(f"{what} is empty; an env needs at least one prompt per split")
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str)]
    if bad:
        raise TypeError(f"{what} must hold strings; items {bad[:5]} are not")
    return prompts


def _from_jsonl(path: Path) -> Splits:
    if not path.exists():
        raise FileNotFoundError(f"prompt file {path} does not exist")
    splits: Splits = {}
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                prompt, split = row["prompt"], row.get("split", "train")
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(
                    f"{path}:{lineno}: each line must be a JSON object with a 'prompt' string "
                    f"(and optionally 'split'): {err}"
                ) from err
            splits.setdefault(split, []).append(prompt)
    return load_prompts(splits)


def hf_dataset(path: str, column: str = "prompt", splits: dict[str, str] | None = None,
               name: str | None = None, data_files: Any = None, limit: int | None = None) -> Splits:
    """Prompts from a HF ``datasets`` dataset (a local path, a name already in the cache, or a
    builder such as ``"json"`` with ``data_files``).

    ``splits`` maps prefgym's split names to the dataset's, e.g. ``{"train": "train", "eval": "test"}``.
    """
    import datasets

    splits = splits or {"train": "train", "eval": "test"}
    out: Splits = {}
    for ours, theirs in splits.items():
        table = datasets.load_dataset(path, name, data_files=data_files, split=theirs)
        if column not in table.column_names:
            raise KeyError(f"dataset {path!r} split {theirs!r} has no column {column!r}; columns: {table.column_names}")
        values = table[column]
        out[ours] = list(values[:limit] if limit else values)
    return out


@functools.lru_cache(maxsize=2)
def _stdlib_signatures(max_chars: int, newline: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    root = stdlib_dir()
    by_split: dict[str, set[str]] = {"train": set(), "heldout": set()}
    for path in stdlib_source_files():
        split = split_of(path.relative_to(root).as_posix())
        text = path.read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            if len(line) <= max_chars and _SIGNATURE.match(line):
                by_split[split].add(line.rstrip() + ("\n" if newline else ""))
    return tuple(sorted(by_split["train"])), tuple(sorted(by_split["heldout"]))


def stdlib_function_prompts(max_chars: int = 100, newline: bool = True) -> Splits:
    """Top-level one-line function signatures from the stdlib (``def f(a, b):\\n``).

    The eval split comes from held-out files (see :mod:`prefgym.data.stdlib`), so a policy
    pretrained on the train files has never seen those functions' bodies.

    ``newline=False`` ends each prompt at its colon (``def f(a, b):``). Use it with a BPE
    tokenizer that merges a newline with the next line's indentation (prefgym/bpe-8k does:
    ``"\\n   "`` is one token): in training text a signature's ``"\\n"`` is never a token of
    its own, so a prompt ending in one asks the model to continue at column 0.

    Example:
        >>> stdlib_function_prompts(newline=False)["train"][0].endswith(":")
        True
    """
    train, heldout = _stdlib_signatures(max_chars, newline)
    return {"train": list(train), "eval": list(heldout)}


def _sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text) if s.strip()]


@functools.lru_cache(maxsize=1)
def _prose_openings(words: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from pydoc_data.topics import topics

    by_split: dict[str, set[str]] = {"train": set(), "heldout": set()}
    for key in sorted(topics):
        for sentence in _sentences(topics[key]):
            tokens = sentence.split(" ")
            # Plain English openings only: capitalised, alphabetic words, no code.
            if len(tokens) <= words or not tokens[0][:1].isupper():
                continue
            opening = tokens[:words]
            if all(t.isalpha() for t in opening):
                by_split[split_of(" ".join(opening))].add(" ".join(opening))
    return tuple(sorted(by_split["train"])), tuple(sorted(by_split["heldout"]))


def prose_prompts(words: int = 4) -> Splits:
    """Openings (first ``words`` words) of English sentences from Python's ``pydoc_data`` topics."""
    train, heldout = _prose_openings(words)
    return {"train": list(train), "eval": list(heldout)}


_PII_TEMPLATES = (
    "You can reach {name} at", "Send the invoice to {name} at", "My name is {name} and my phone number is",
    "Please write to {name} via", "The contact for {name} is", "{name} lives at",
    "For questions, email {name} at", "Call {name} on", "{name} can be contacted through",
    "The account of {name} is registered to",
)
_NAMES = ("Alice", "Bob", "Carol", "David", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
          "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Zoe")


def pii_prompts() -> Splits:
    """Openings that invite personal data ("You can reach Alice at"); names are split train/eval."""
    prompts = [t.format(name=n) for t in _PII_TEMPLATES for n in _NAMES]
    eval_names = set(_NAMES[-4:])
    return {"train": [p for p in prompts if not any(n in p for n in eval_names)],
            "eval": [p for p in prompts if any(n in p for n in eval_names)]}


def arithmetic_prompts(n_train: int = 2000, n_eval: int = 200, max_operand: int = 50,
                       ops: str = "+-*", seed: int = 0) -> Splits:
    """``"12 + 35 ="`` style prompts; eval problems never appear in train."""
    if not ops or set(ops) - set("+-*"):
        raise ValueError(f"ops must be a non-empty subset of '+-*', got {ops!r}")
    rng = random.Random(seed)
    seen: set[str] = set()
    problems: list[str] = []
    capacity = (max_operand + 1) ** 2 * len(ops)
    if n_train + n_eval > capacity:
        raise ValueError(f"only {capacity} distinct problems exist for max_operand={max_operand}; lower n_train/n_eval")
    while len(problems) < n_train + n_eval:
        problem = f"{rng.randint(0, max_operand)} {rng.choice(ops)} {rng.randint(0, max_operand)} ="
        if problem not in seen:
            seen.add(problem)
            problems.append(problem)
    return {"train": problems[:n_train], "eval": problems[n_train:]}
