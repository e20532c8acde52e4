"""Task scorers with an exact answer: arithmetic, and toy scorers with a known optimum.

The toy scorers exist for learning tests (as stable-baselines3's identity envs): the
optimal completion is known, so a test can assert that an agent gets close to it.

Example:
    >>> from prefgym.preferences import ArithmeticScorer, TargetCharScorer
    >>> ArithmeticScorer().score(["12 + 35 =", "7 * 6 ="], [" 47", " 41"]).tolist()
    [1.0, 0.0]
    >>> TargetCharScorer(target="a").score(["", ""], ["aaab", ""]).tolist()
    [0.75, 0.0]
"""

from __future__ import annotations

import re
from decimal import Decimal

import numpy as np

from prefgym.preferences.base import Scorer

# The last "<int> <op> <int> =" in the prompt, so a few-shot prefix of solved examples works.
_PROBLEM = re.compile(r"(-?\d+)\s*([-+*])\s*(-?\d+)\s*=\s*$")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_FLOAT_LIMIT = 1e300  # parsed_answer is clipped here so that a 400-digit number stays finite


def parse_problem(prompt: str) -> int:
    """The exact answer of the arithmetic problem that ends ``prompt``.

    Example:
        >>> parse_problem("Q: 5 - 8 =")
        -3
    """
    match = _PROBLEM.search(prompt)
    if match is None:
        raise ValueError(
            f"arithmetic prompt {prompt[-60:]!r} does not end with '<int> <op> <int> =' "
            "(op one of + - *); write prompts like '12 + 35 ='"
        )
    a, op, b = int(match.group(1)), match.group(2), int(match.group(3))
    return a + b if op == "+" else a - b if op == "-" else a * b


class ArithmeticScorer(Scorer):
    """Score 1.0 when the first number in the completion equals the answer, else 0.0.

    Parts: ``correct`` (bool), ``has_answer`` (bool: the completion contains a number) and
    ``parsed_answer`` (float; 0.0 where ``has_answer`` is False, since scores and parts stay
    finite). Numbers are compared exactly (as decimals), so ``47.0`` counts as ``47``.

    Example:
        >>> ArithmeticScorer().score_parts(["3 * 4 ="], [" 12, done"])["correct"].tolist()
        [True]
    """

    name = "arithmetic"

    def _score(self, prompts: list[str], completions: list[str]) -> dict[str, np.ndarray]:
        n = len(completions)
        correct, has_answer, parsed = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n)
        for i, (prompt, completion) in enumerate(zip(prompts, completions)):
            answer = parse_problem(prompt)
            match = _NUMBER.search(completion)
            if match is None:
                continue
            has_answer[i] = True
            correct[i] = Decimal(match.group()) == answer
            parsed[i] = float(np.clip(float(match.group()), -_FLOAT_LIMIT, _FLOAT_LIMIT))
        return {"score": correct.astype(np.float64), "correct": correct,
                "has_answer": has_answer, "parsed_answer": parsed}


class TargetCharScorer(Scorer):
    """Toy: score = fraction of completion characters equal to ``target`` (0.0 when empty).

    The optimum (1.0) is a completion made only of ``target``.

    Example:
        >>> TargetCharScorer(target="x").score(["p"], ["xyxx"]).tolist()
        [0.75]
    """

    name = "target_char"

    def __init__(self, target: str = "a", name: str | None = None, temperature: float = 1.0) -> None:
        if not isinstance(target, str) or len(target) != 1:
            raise ValueError(f"target must be a single character, got {target!r}")
        super().__init__(name=name, temperature=temperature)
        self.target = target

    def _score(self, prompts: list[str], completions: list[str]) -> dict[str, np.ndarray]:
        hits = np.asarray([c.count(self.target) for c in completions], dtype=np.float64)
        chars = np.asarray([len(c) for c in completions], dtype=np.float64)
        return {"score": np.divide(hits, chars, out=np.zeros(len(chars)), where=chars > 0), "chars": chars}


class LengthScorer(Scorer):
    """Toy: score = -|len(completion) - target_chars| / target_chars (optimum 0 at the target).

    Example:
        >>> LengthScorer(target_chars=20).score(["", ""], ["x" * 20, "x" * 30]).tolist()
        [0.0, -0.5]
    """

    name = "length"

    def __init__(self, target_chars: int = 20, name: str | None = None, temperature: float = 1.0) -> None:
        if int(target_chars) < 1:
            raise ValueError(f"target_chars must be >= 1, got {target_chars}")
        super().__init__(name=name, temperature=temperature)
        self.target_chars = int(target_chars)

    def _score(self, prompts: list[str], completions: list[str]) -> dict[str, np.ndarray]:
        chars = np.asarray([len(c) for c in completions], dtype=np.float64)
        return {"score": 0.0 - np.abs(chars - self.target_chars) / self.target_chars, "chars": chars}
