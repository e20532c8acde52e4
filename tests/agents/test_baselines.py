"""Best-of-n and the random baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.best_of_n import BestOfNAgent, BestOfNConfig, best_indices
from agents.random_baseline import RandomAgent, RandomConfig, UniformPolicy


def test_best_of_n_keeps_the_best_sample_of_each_prompt(policy, toy_env):
    from prefgym.rollout import generate_rollout

    env = toy_env(8)
    agent = BestOfNAgent(BestOfNConfig(batch_size=8, n=4, device="cpu"), policy)
    best = agent.act(env, seed=5)
    singles = [generate_rollout(policy, env, prompts=best.prompts, seed=5 + 104_729 * k) for k in range(4)]
    expected = torch.stack([r.scores for r in singles]).max(0).values
    assert best.scores.tolist() == pytest.approx(expected.tolist())
    chosen = best_indices(torch.stack([r.scores for r in singles]))
    for row, k in enumerate(chosen.tolist()):
        assert best.completions[row] == singles[k].completions[row]
        n = int(singles[k].token_mask[row].sum())
        assert best.tokens[row, :n].tolist() == singles[k].tokens[row, :n].tolist()
    assert np.allclose(best.infos["score"], best.scores.numpy())


def test_random_policy_is_uniform(toy_env):
    env = toy_env(4)
    agent = RandomAgent(RandomConfig(batch_size=4, device="cpu"), vocab_size=len(env.unwrapped.tokenizer))
    rollout = agent.act(env, seed=0)
    mask = rollout.token_mask.bool()
    assert torch.allclose(rollout.logprobs[mask], torch.full((int(mask.sum()),), -math.log(agent.policy.config.vocab_size)))
    with pytest.raises(ValueError, match="vocab_size"):
        RandomAgent(RandomConfig())


def test_uniform_policy_honours_logits_to_keep():
    logits = UniformPolicy(7)(input_ids=torch.zeros(2, 5, dtype=torch.long), logits_to_keep=3).logits
    assert logits.shape == (2, 3, 7) and float(logits.abs().sum()) == 0.0
