"""The one exception a leaderboard check raises: a submission (or protocol) that is refused.

Example:
    >>> err = SubmissionError(["metrics.gold_score is NaN"], where="pep8/x.json")
    >>> str(err).splitlines()[0]
    'pep8/x.json refused: 1 problem'
"""

from __future__ import annotations


class SubmissionError(ValueError):
    """A refused submission or protocol; ``problems`` lists every reason, each saying how to fix it."""

    def __init__(self, problems: list[str] | str, where: str = "submission"):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.where = where
        count = len(self.problems)
        lines = [f"{where} refused: {count} problem{'s' if count != 1 else ''}"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))
