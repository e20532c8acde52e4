"""PEP8 violations per character: hand-counted snippets, artefacts of partial generations, pool."""

from __future__ import annotations

import numpy as np
import pytest

from prefgym.preferences import PEP8Scorer, check_text, count_violations, pep8, shutdown_pool

SIG = "def f(a, b):\n"


def codes(prompt: str, completion: str, **kwargs) -> list[str]:
    return [v[2] for v in count_violations(prompt, completion, **kwargs)]


def test_clean_code_has_no_violations():
    parts = PEP8Scorer(n_workers=1).score_parts([SIG], ["    c = a + b\n    return c * 2\n"])
    assert parts["violations"].tolist() == [0] and parts["score"].tolist() == [0.0]


def test_known_e225_and_e231_counts():
    completion = "    x=a\n    y=[a,b,x]\n    return y\n"  # 2 x E225, 2 x E231
    assert sorted(codes(SIG, completion)) == ["E225", "E225", "E231", "E231"]
    parts = PEP8Scorer(n_workers=1).score_parts([SIG], [completion])
    assert parts["violations"].tolist() == [4]
    assert parts["violations_per_char"][0] == pytest.approx(4 / len(completion))
    assert parts["score"][0] == pytest.approx(-4 / len(completion))


def test_only_completion_lines_count():
    assert codes("def f(a,b):\n", "    return a\n") == []  # the prompt's E231 is not the policy's
    assert codes("def f(a,", "b):\n    return a\n") == []  # the shared line: E231 is at the prompt's comma
    assert codes("def f(a, ", "b,c):\n    return a\n") == ["E231"]  # ... and here in the completion


def test_missing_final_newline_is_not_penalised():
    assert codes(SIG, "    return a") == []  # W292 would fire on the raw text
    assert codes(SIG, "    return a  ") == ["W291"]  # but trailing spaces still count


def test_trailing_blank_lines_are_not_penalised():
    assert codes(SIG, "    return a\n\n\n") == []  # W391


def test_truncated_brackets_and_strings_are_not_penalised():
    assert codes(SIG, "    return g(a,\n             b") == []
    assert codes(SIG, '    """A docstring that is cut') == []
    assert codes(SIG, "    return [a,b,\n") == ["E231"]  # violations before the cut still count


def test_real_indentation_errors_count():
    assert codes("def f(a):\n", "        x = 1\n    return x\n") == ["E117", "E901"]


def test_indented_prompt_is_a_method():
    assert codes("    def f(self):\n", "        return 1\n\n    def g(self):\n        return 2\n") == []
    assert codes("def f():\n", "    return 1\n\ndef g():\n    return 2\n") == ["E302"]


def test_noqa_is_ignored_unless_asked():
    completion = "    return a == None  # noqa\n"  # pycodestyle honours noqa for E711, E501, ...
    assert codes(SIG, completion) == ["E711"]
    assert codes(SIG, completion, honour_noqa=True) == []


def test_pycodestyle_crashes_skip_one_check_and_are_counted():
    # pycodestyle's E402 check indexes line[1] of a one-character 'b'/'r'/'u' logical line
    assert check_text("", "b") == ([], 1)
    assert check_text("", "b\nx=1\n") == ([(2, 1, "E225", "E225 missing whitespace around operator")], 1)
    # E12x (continuation lines) crashes on this garbage; the other checks still report
    found, crashes = check_text("", "){b0+}3*}) \"\r\"\tr02a}\\\n 12 2):{.b{2:*+  )1(")
    assert crashes == 1 and "E202" in [v[2] for v in found]
    parts = PEP8Scorer(n_workers=1).score_parts(["", ""], ["b", "x = 1\n"])
    assert parts["checker_crashes"].tolist() == [1, 0]


def test_lines_split_like_python_reads_a_file():
    # str.splitlines would split at the form feed and U+2028 and report bogus indentation errors
    assert codes("def f(a):\n", "    x = 1\x0c\n    y=2\u2028\n") == ["E225"]
    assert codes("def f(a):\r\n", "    return a+1 \r\n") == ["W291"]


def test_empty_completion_scores_zero():
    parts = PEP8Scorer(n_workers=1).score_parts(["def f(a,b):  \n"], [""])
    assert parts["violations"].tolist() == [0] and parts["score"].tolist() == [0.0]


def test_options_change_counts():
    long_line = "    return " + "a + " * 20 + "b\n"  # 95 characters
    assert codes(SIG, long_line) == ["E501"]
    assert codes(SIG, long_line, max_line_length=100) == []
    assert codes(SIG, "    return a+b\n", ignore=("W291",)) == ["E226"]


def test_process_pool_equals_serial():
    snippets = ["    x=a\n", "    return [a,b]\n", "    return a\n", "    y = (a,\n", "", "\treturn b  \n"]
    prompts, completions = [SIG] * 60, [snippets[i % len(snippets)] * (1 + i % 3) for i in range(60)]
    serial = PEP8Scorer(n_workers=1).score_parts(prompts, completions)
    try:
        pooled = PEP8Scorer(n_workers=2, parallel_threshold=2, adaptive=False).score_parts(prompts, completions)
        assert pep8._POOL is not None  # the pool really ran
    finally:
        shutdown_pool()
    for key in serial:
        np.testing.assert_array_equal(pooled[key], serial[key])
    assert serial["violations"].sum() > 30


def test_busy_machine_scores_in_process(monkeypatch):
    monkeypatch.setattr(pep8.os, "getloadavg", lambda: (99.0, 99.0, 99.0))
    assert pep8.machine_is_busy()
    shutdown_pool()
    PEP8Scorer(n_workers=2, parallel_threshold=2).score([SIG] * 4, ["    x=1\n"] * 4)
    assert pep8._POOL is None
    monkeypatch.setattr(pep8.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert not pep8.machine_is_busy()
