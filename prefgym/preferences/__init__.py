"""Preference models: scripted scorers, simulated annotators, and preference datasets.

One protocol (``PreferenceModel``): ``score(prompts, completions) -> (N,) float64`` (higher is
preferred) and ``compare(prompt, a, b) -> P(a preferred)`` by Bradley-Terry on scores.
Every scorer is built from plain JSON data, so an env can hold it as a ``_target_`` dict.
Importing this package is cheap: pycodestyle, VADER and scrubadub load on first use.

Example:
    >>> from prefgym.preferences import build_scorer
    >>> scorer = build_scorer({"_target_": "prefgym.preferences.PEP8Scorer"})
    >>> scorer.score(["def f(a, b):\\n"], ["    return a + b\\n"]).tolist()
    [0.0]
"""

from __future__ import annotations

from prefgym.preferences.annotators import AnnotatorPool, Annotations, BoltzmannAnnotator
from prefgym.preferences.base import (
    CallableScorer,
    NonFiniteScoreError,
    PreferenceModel,
    Scorer,
    as_preference_model,
    bradley_terry,
    build_scorer,
    check_scores,
)
from prefgym.preferences.composite import WeightedSum
from prefgym.preferences.dataset import load_preference_dataset, make_preference_dataset
from prefgym.preferences.pep8 import PEP8Scorer, check_text, count_violations, shutdown_pool
from prefgym.preferences.tasks import ArithmeticScorer, LengthScorer, TargetCharScorer, parse_problem
from prefgym.preferences.text import PIIScorer, SentimentScorer

__all__ = [
    "AnnotatorPool",
    "Annotations",
    "ArithmeticScorer",
    "BoltzmannAnnotator",
    "CallableScorer",
    "LengthScorer",
    "NonFiniteScoreError",
    "PEP8Scorer",
    "PIIScorer",
    "PreferenceModel",
    "Scorer",
    "SentimentScorer",
    "TargetCharScorer",
    "WeightedSum",
    "as_preference_model",
    "bradley_terry",
    "build_scorer",
    "check_scores",
    "check_text",
    "count_violations",
    "load_preference_dataset",
    "make_preference_dataset",
    "parse_problem",
    "shutdown_pool",
]
