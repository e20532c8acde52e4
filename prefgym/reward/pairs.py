"""Simulated comparison datasets: completions to compare, labelled by a noisy annotator.

Two sources of completions:

* :func:`pep8_corpus_pairs` — real function bodies from the standard library (train or
  held-out files), each pair two independently "sloppified" copies of one body (random
  PEP8-breaking edits at random rates), so the two differ in style but not in meaning.
  Needs no policy, so a reward model can be trained before any base model exists.
* :func:`policy_pairs` — two samples of a policy on the same env prompt (the usual RLHF
  setup: the reward model learns on the policy's own distribution).

Both label with any annotator from :mod:`prefgym.preferences` (e.g. a PEP8
``BoltzmannAnnotator`` with ``flip_prob=0.25``) and keep the scorer's noiseless scores in
``gold``, so held-out accuracy can be measured against the noiseless annotator too.

Example:
    >>> from prefgym.preferences import BoltzmannAnnotator
    >>> ann = BoltzmannAnnotator({"_target_": "prefgym.preferences.PEP8Scorer"}, temperature=0.0)
    >>> pairs = pep8_corpus_pairs(4, ann, split="heldout", seed=0)
    >>> len(pairs), pairs[0].prompt.startswith("def ")
    (4, True)
"""

from __future__ import annotations

import ast
import functools
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from prefgym.reward.data import Comparison


@functools.lru_cache(maxsize=4)
def stdlib_functions(split: str = "train", max_lines: int = 8, max_prompt_chars: int = 100) -> tuple[tuple[str, str], ...]:
    """(signature line, first ``max_lines`` body lines) of top-level stdlib functions in ``split``."""
    from prefgym.data.stdlib import split_of, stdlib_dir, stdlib_source_files

    root = stdlib_dir()
    out = []
    for path in stdlib_source_files():
        if split_of(path.relative_to(root).as_posix()) != split:
            continue
        source = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines = source.splitlines(keepends=True)
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or node.decorator_list or node.body[0].lineno <= node.lineno:
                continue
            signature = lines[node.lineno - 1]
            if node.body[0].lineno != node.lineno + 1 or len(signature) > max_prompt_chars:
                continue  # multi-line signatures make poor prompts
            body = "".join(lines[node.lineno:min(node.end_lineno, node.lineno + max_lines)])
            if body.strip():
                out.append((signature.rstrip() + "\n", body))
    if not out:
        raise ValueError(f"no stdlib functions found in split {split!r}; splits are 'train' and 'heldout'")
    return tuple(out)


# Each edit breaks one PEP8 rule on a line (or returns it unchanged when the rule has no hook there).
_EDITS: tuple[Callable[[str, random.Random], str], ...] = (
    lambda s, r: s.replace(", ", ",", 1),  # E231 missing whitespace after ','
    lambda s, r: s.rstrip("\n") + " " * r.randint(1, 3) + "\n",  # W291 trailing whitespace
    lambda s, r: s.replace(" = ", "=", 1) if "(" not in s else s.replace(" = ", " =", 1),  # E225
    lambda s, r: re.sub(r"(\w)\(", r"\1 (", s, count=1),  # E211 whitespace before '('
    lambda s, r: s.rstrip("\n") + "  # " + "x" * r.randint(70, 90) + "\n",  # E501 line too long
    lambda s, r: s.rstrip("\n") + " # note\n" if "#" not in s else s,  # E261 one space before comment
    lambda s, r: s + " " * r.randint(1, 8) + "\n",  # W293 whitespace on a blank line
    lambda s, r: s.replace(" == ", "==", 1),  # E225 around comparison
    lambda s, r: re.sub(r"\(([^ )])", r"( \1", s, count=1),  # E201 whitespace after '('
    lambda s, r: s.replace(":\n", " :\n", 1),  # E203 whitespace before ':'
)


def sloppify(code: str, rate: float, rng: random.Random) -> str:
    """Apply a random PEP8-breaking edit to each line with probability ``rate``.

    Example:
        >>> sloppify("    x = f(a, b)\\n", 0.0, random.Random(0))
        '    x = f(a, b)\\n'
    """
    lines = code.splitlines(keepends=True)
    out = []
    for line in lines:
        if not line.endswith("\n"):
            line += "\n"
        if rng.random() < rate:
            line = rng.choice(_EDITS)(line, rng)
        out.append(line)
    return "".join(out)


def _to_comparisons(rows: list[dict[str, Any]]) -> list[Comparison]:
    return [Comparison(r["prompt"], (r["chosen"], r["rejected"]), False, r.get("annotator"),
                       (r["score_chosen"], r["score_rejected"])) for r in rows]


def pep8_corpus_pairs(n: int, annotator: Any, split: str = "train", max_rate: float = 0.6,
                      max_lines: int = 8, seed: int = 0) -> list[Comparison]:
    """``n`` labelled pairs of two sloppified copies of stdlib function bodies from ``split``."""
    from prefgym.preferences import make_preference_dataset

    functions = stdlib_functions(split, max_lines)
    rng = random.Random(seed)
    prompts, a, b = [], [], []
    while len(prompts) < n:
        signature, body = rng.choice(functions)
        x, y = sloppify(body, rng.uniform(0, max_rate), rng), sloppify(body, rng.uniform(0, max_rate), rng)
        if x != y:  # identical copies carry no preference
            prompts.append(signature)
            a.append(x)
            b.append(y)
    return _to_comparisons(make_preference_dataset(prompts, a, b, annotator))


@functools.lru_cache(maxsize=4)
def prose_sentences(split: str = "train", words: int = 4, max_words: int = 28) -> tuple[tuple[str, str], ...]:
    """(opening of ``words`` words, rest of the sentence) from ``pydoc_data`` topics in ``split``.

    Split by a hash of the opening, as :func:`prefgym.data.prompts.prose_prompts` splits prompts.
    """
    from pydoc_data.topics import topics

    from prefgym.data.stdlib import split_of

    out = []
    for key in sorted(topics):
        text = re.sub(r"\s+", " ", topics[key])
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text):
            tokens = sentence.strip().split(" ")
            opening = tokens[:words]
            if len(tokens) <= words + 2 or not opening[0][:1].isupper() or not all(t.isalpha() for t in opening):
                continue
            if split_of(" ".join(opening)) == split:
                out.append((" ".join(opening), " " + " ".join(tokens[words:max_words])))
    if not out:
        raise ValueError(f"no prose sentences in split {split!r}; splits are 'train' and 'heldout'")
    return tuple(out)


@functools.lru_cache(maxsize=2)
def sentiment_words(count: int = 400, seed: int = 0) -> tuple[str, ...]:
    """``count`` alphabetic words of VADER's lexicon (a fixed, seeded sample, both polarities)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    lexicon = SentimentIntensityAnalyzer().lexicon
    words = sorted(w for w, v in lexicon.items() if w.isalpha() and len(w) > 2 and abs(v) >= 1.0)
    return tuple(random.Random(seed).sample(words, min(count, len(words))))


def sentimentify(text: str, inserts: int, vocabulary: Sequence[str], rng: random.Random) -> str:
    """Insert ``inserts`` random words of ``vocabulary`` at random word boundaries of ``text``.

    Example:
        >>> sentimentify(" a b", 0, ["good"], random.Random(0))
        ' a b'
    """
    tokens = text.split(" ")
    for _ in range(inserts):
        tokens.insert(rng.randint(1, len(tokens)), rng.choice(vocabulary))
    return " ".join(tokens)


def sentiment_corpus_pairs(n: int, annotator: Any, split: str = "train", max_inserts: int = 3,
                           vocabulary_size: int = 400, seed: int = 0) -> list[Comparison]:
    """``n`` labelled pairs of one prose sentence's rest with random sentiment words inserted.

    Prompts are sentence openings (as the Sentiment env's); each completion gets 0 to
    ``max_inserts`` words from a fixed sample of VADER's lexicon, so the pair differs in
    sentiment, not in topic.
    """
    from prefgym.preferences import make_preference_dataset

    sentences = prose_sentences(split)
    vocabulary = sentiment_words(vocabulary_size)
    rng = random.Random(seed)
    prompts, a, b = [], [], []
    while len(prompts) < n:
        opening, rest = rng.choice(sentences)
        x, y = (sentimentify(rest, rng.randint(0, max_inserts), vocabulary, rng) for _ in range(2))
        if x != y:
            prompts.append(opening)
            a.append(x)
            b.append(y)
    return _to_comparisons(make_preference_dataset(prompts, a, b, annotator))


def sample_pairs(policy: Any, env: Any, n: int, annotator: Any, seed: int = 0, temperature: float = 1.0,
                 max_tries: int | None = None, min_chars: int = 0) -> tuple[list[Comparison], int]:
    """``n`` labelled pairs of two samples of ``policy`` per prompt of a rollout ``env``.

    Prompts are drawn (seeded) from the env's prompt split, one batch of ``num_envs`` at a time.
    Also returns how many sampled pairs were dropped because both samples were identical
    (no preference to learn) or one has fewer than ``min_chars`` non-blank characters.
    """
    import numpy as np

    from prefgym.preferences import make_preference_dataset
    from prefgym.rollout import generate_rollout

    pool = list(env.unwrapped.prompt_split)
    batch_size = env.unwrapped.num_envs
    rng = np.random.default_rng(seed)
    prompts, a, b, dropped, step = [], [], [], 0, 0
    max_tries = max_tries or 8 * (n // batch_size + 1) + 8
    while len(prompts) < n:
        if step >= max_tries:
            raise RuntimeError(f"after {step} batches only {len(prompts)} of {n} pairs differ ({dropped} identical "
                               "sample pairs dropped); raise the sampling temperature or max_new_tokens")
        batch = [pool[i] for i in rng.integers(0, len(pool), size=batch_size)]
        first, second = (generate_rollout(policy, env, prompts=batch, seed=seed * 100_003 + 2 * step + k,
                                          temperature=temperature) for k in (0, 1))
        step += 1
        for prompt, x, y in zip(batch, first.completions, second.completions):
            if x == y or min(len(x.strip()), len(y.strip())) < min_chars:
                dropped += 1
            elif len(prompts) < n:
                prompts.append(prompt)
                a.append(x)
                b.append(y)
    return _to_comparisons(make_preference_dataset(prompts, a, b, annotator)), dropped


def policy_pairs(policy: Any, env_id: str, n: int, annotator: Any, batch_size: int = 32, seed: int = 0,
                 split: str = "train", temperature: float = 1.0, **env_kwargs: Any) -> tuple[list[Comparison], int]:
    """:func:`sample_pairs` on a fresh rollout env ``env_id`` (prompt ``split``)."""
    from prefgym.rollout import make_rollout_env

    env = make_rollout_env(env_id, num_envs=batch_size, split=split, **env_kwargs)
    try:
        return sample_pairs(policy, env, n, annotator, seed, temperature)
    finally:
        env.close()


def annotator_from(scorer: Any, temperature: float = 0.0, flip_prob: float = 0.25, seed: int = 0) -> Any:
    """A ``BoltzmannAnnotator`` over a scorer name (``pep8``/``sentiment``) or ``_target_`` dict."""
    from prefgym.preferences import BoltzmannAnnotator

    return BoltzmannAnnotator(scorer_spec(scorer), temperature=temperature, flip_prob=flip_prob, seed=seed)


SCORERS = {"pep8": "prefgym.preferences.PEP8Scorer", "sentiment": "prefgym.preferences.SentimentScorer",
           "pii": "prefgym.preferences.PIIScorer", "arithmetic": "prefgym.preferences.ArithmeticScorer"}


def scorer_spec(scorer: Any) -> Any:
    """``{"_target_": ...}`` for a short scorer name; other specs pass through."""
    if isinstance(scorer, str):
        if scorer not in SCORERS:
            raise ValueError(f"unknown scorer {scorer!r}; short names are {sorted(SCORERS)} (or pass a _target_ dict)")
        return {"_target_": SCORERS[scorer]}
    return scorer


def concat(*parts: Sequence[Comparison]) -> list[Comparison]:
    """All comparisons of several lists, in order."""
    return [c for part in parts for c in part]
