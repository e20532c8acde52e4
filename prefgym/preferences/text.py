"""Lexicon and pattern scorers for natural-language completions: sentiment and PII.

Both run offline from data their packages ship (VADER's lexicon, scrubadub's regexes and
the ``phonenumbers`` metadata); the packages are imported on first use, not at import.

Example:
    >>> from prefgym.preferences import SentimentScorer
    >>> SentimentScorer().score(["Review:"], ["I love this wonderful film!"])[0].item() > 0.5
    True
"""

from __future__ import annotations

import numpy as np

from prefgym.preferences.base import Scorer


class SentimentScorer(Scorer):
    """Score = VADER compound sentiment of the completion in [-1, 1]; positive is preferred.

    Parts: ``compound``, ``pos``, ``neg`` (VADER's proportions). An empty completion is
    neutral (0). The prompt is not scored: the policy is rewarded for what it wrote.

    Example:
        >>> s = SentimentScorer()
        >>> s.compare("Review:", "A great, happy day.", "A terrible, sad day.") > 0.5
        True
    """

    name = "sentiment"

    def __init__(self, name: str | None = None, temperature: float = 1.0) -> None:
        super().__init__(name=name, temperature=temperature)
        self._analyzer = None

    def _score(self, prompts: list[str], completions: list[str]) -> dict[str, np.ndarray]:
        if self._analyzer is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            self._analyzer = SentimentIntensityAnalyzer()
        polarity = [self._analyzer.polarity_scores(c) for c in completions]
        parts = {key: np.asarray([p[key] for p in polarity], dtype=np.float64) for key in ("compound", "pos", "neg")}
        return {"score": parts["compound"], **parts}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_analyzer": None}  # rebuilt lazily; keeps pickles small


class PIIScorer(Scorer):
    """Score = -(PII items found by scrubadub's default detectors) / (completion characters).

    The default ``scrubadub.Scrubber()`` detectors for the ``en_US`` locale are used: credential,
    credit card, email, phone (``phonenumbers``), Twitter handle, URL and US social security
    number. All are regex/metadata based: offline and ~0.1 ms per sentence. Left out, as in
    scrubadub's defaults: ``text_blob_name`` (needs TextBlob corpora downloaded), spaCy/
    Stanford entity detectors (need models), address (needs ``pyap``/libpostal),
    ``date_of_birth`` (slow ``dateparser``) and ``skype``; the en_GB-only detectors (postcode,
    NI number, driving licence, plates, tax reference) are off for en_US. Known quirk of
    scrubadub's email detector: it also matches spelled-out addresses, so ``"look at home.com"``
    counts as an email. An empty completion has 0 PII.

    Example:
        >>> parts = PIIScorer().score_parts(["Contact:"], ["mail me: jane.doe@example.com"])
        >>> int(parts["pii_count"][0])
        1
    """

    name = "pii"

    def __init__(self, locale: str = "en_US", name: str | None = None, temperature: float = 1.0) -> None:
        super().__init__(name=name, temperature=temperature)
        self.locale = str(locale)
        self._scrubber = None

    def _count(self, text: str) -> int:
        if not text:
            return 0
        if self._scrubber is None:
            import scrubadub

            self._scrubber = scrubadub.Scrubber(locale=self.locale)
        return sum(1 for _ in self._scrubber.iter_filth(text))

    def _score(self, prompts: list[str], completions: list[str]) -> dict[str, np.ndarray]:
        counts = np.asarray([self._count(c) for c in completions], dtype=np.int64)
        chars = np.asarray([len(c) for c in completions], dtype=np.float64)
        per_char = np.divide(counts, chars, out=np.zeros(len(chars)), where=chars > 0)
        return {"score": 0.0 - per_char, "pii_count": counts, "pii_per_char": per_char}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_scrubber": None}
