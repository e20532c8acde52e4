"""Pieces of the protocol runner: the uniform policy, best-of-n, control-token prompts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prefgym.leaderboard.runner import _drop_control_suffix, _pick_rows, best_of_n_kl, uniform_policy
from prefgym.rollout import Rollout


def _rollout(prompt_ids, scores, tag: str) -> Rollout:
    b = len(scores)
    return Rollout(torch.tensor(prompt_ids), torch.ones(b, len(prompt_ids[0]), dtype=torch.long),
                   torch.zeros(b, 2, dtype=torch.long), torch.ones(b, 2, dtype=torch.long), torch.zeros(b, 2),
                   torch.zeros(b, 2), torch.tensor(scores), ["p"] * b, [f"{tag}{i}" for i in range(b)],
                   {"score": np.asarray(scores)})


def test_uniform_policy_is_uniform_and_cacheless():
    out = uniform_policy(7)(input_ids=torch.zeros(2, 3, dtype=torch.long), logits_to_keep=1)
    assert out.logits.shape == (2, 1, 7) and out.past_key_values is None
    assert torch.allclose(out.logits.softmax(-1), torch.full((2, 1, 7), 1 / 7))


def test_best_of_n_picks_the_best_row_of_each_draw_and_reports_the_bound():
    a, b = _rollout([[5, 6], [5, 6]], [0.1, 0.9], "a"), _rollout([[5, 6], [5, 6]], [0.5, 0.2], "b")
    picked = _pick_rows([a, b], torch.stack([a.scores, b.scores]).argmax(0))
    assert picked.completions == ["b0", "a1"] and picked.scores.tolist() == pytest.approx([0.5, 0.9])
    assert best_of_n_kl(1) == 0.0 and best_of_n_kl(2) == pytest.approx(math.log(2) - 0.5)


def test_control_suffix_is_dropped_for_the_base_policy_side_of_the_kl():
    r = _rollout([[9, 4, 1], [3, 4, 1]], [0.0, 0.0], "x")
    r.tokens[0, 0] = 1  # a generated <|good|> before a line
    r = _drop_control_suffix(r, good_id=1)
    assert r.prompt_ids.tolist() == [[0, 9, 4], [0, 3, 4]] and r.prompt_mask.tolist() == [[0, 1, 1], [0, 1, 1]]
    assert r.token_mask.tolist() == [[0, 1], [1, 1]]
    with pytest.raises(ValueError, match="must end with"):
        _drop_control_suffix(_rollout([[9, 4, 2]], [0.0], "x"), good_id=1)
