"""The rollout fast path: cached decoding equals uncached decoding; sampling is exact; env rules apply."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import prefgym  # noqa: F401
from prefgym.rollout import generate_rollout, make_rollout_env, model_step, sample_tokens


def tiny_policy(vocab: int, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_layer=2, n_embd=32, n_head=2, n_positions=64)).eval()


@pytest.fixture(scope="module")
def env():
    return make_rollout_env("prefgym/ToyTarget-v0", num_envs=4)


def test_greedy_rollout_matches_uncached_greedy_decoding(env):
    policy = tiny_policy(len(env.unwrapped.tokenizer))
    prompts = ["the ", "a cat ", "be ", "we see "]
    rollout = generate_rollout(policy, env, prompts=prompts, temperature=0)
    tok = env.unwrapped.tokenizer
    for row, prompt in enumerate(prompts):
        ids = torch.tensor([tok(prompt)["input_ids"]])
        for step in range(rollout.lengths[row]):
            logits = policy(input_ids=ids).logits[0, -1]
            expected = int(logits.argmax())
            assert int(rollout.tokens[row, step]) == expected
            ids = torch.cat([ids, torch.tensor([[expected]])], dim=1)


def test_rollout_logprobs_match_a_fresh_forward_pass(env):
    policy = tiny_policy(len(env.unwrapped.tokenizer), seed=1)
    rollout = generate_rollout(policy, env, seed=0)
    ids = torch.cat([rollout.prompt_ids, rollout.tokens], dim=1)
    mask = torch.cat([rollout.prompt_mask, rollout.token_mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = policy(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    width = rollout.prompt_ids.shape[1]
    logp = torch.log_softmax(logits[:, width - 1:-1], -1).gather(-1, rollout.tokens[..., None]).squeeze(-1)
    live = rollout.token_mask.bool()
    torch.testing.assert_close(logp[live], rollout.logprobs[live], atol=1e-4, rtol=1e-4)


def test_rollout_scores_rewards_and_completions_agree(env):
    policy = tiny_policy(len(env.unwrapped.tokenizer), seed=2)
    rollout = generate_rollout(policy, env, seed=3)
    expected = [sum(c == "a" for c in text) / len(text) if text else 0.0 for text in rollout.completions]
    np.testing.assert_allclose(rollout.scores.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(rollout.rewards.sum(-1).numpy(), expected, atol=1e-6)
    assert rollout.num_tokens == int(rollout.lengths.sum()) and rollout.tokens.shape[0] == 4


def test_seeded_rollouts_are_deterministic(env):
    policy = tiny_policy(len(env.unwrapped.tokenizer), seed=3)
    a = generate_rollout(policy, env, seed=11)
    b = generate_rollout(policy, env, seed=11)
    assert a.completions == b.completions and a.prompts == b.prompts
    torch.testing.assert_close(a.logprobs, b.logprobs)


def test_blocked_tokens_are_never_sampled(env):
    tok = env.unwrapped.tokenizer
    policy = tiny_policy(len(tok), seed=4)
    blocked = [tok.eos_token_id] + tok.convert_tokens_to_ids(list("abcdefghij"))
    rollout = generate_rollout(policy, env, seed=0, blocked_token_ids=blocked)
    assert not np.isin(rollout.tokens.numpy(), blocked).any()


def test_sampling_distribution_and_filters():
    g = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.1, 0.2, 0.7])
    tokens, logp = sample_tokens(probs.log().repeat(20000, 1), generator=g)
    np.testing.assert_allclose(torch.bincount(tokens, minlength=3).numpy() / 20000, probs.numpy(), atol=0.015)
    torch.testing.assert_close(logp, probs.log()[tokens])
    top_k, _ = sample_tokens(torch.tensor([[1.0, 2.0, 3.0, 4.0]]).repeat(2000, 1), top_k=2, generator=g)
    assert set(top_k.tolist()) == {2, 3}
    top_p, _ = sample_tokens(torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log().repeat(2000, 1), top_p=0.7, generator=g)
    assert set(top_p.tolist()) == {0, 1}
    zero, _ = sample_tokens(torch.tensor([[0.0, float("-inf"), 0.0]]).repeat(2000, 1), generator=g)
    assert 1 not in zero.tolist()


def test_model_step_returns_last_logits_and_cache():
    policy = tiny_policy(44)
    ids = torch.randint(0, 44, (2, 5))
    mask = torch.ones_like(ids)
    logits, cache = model_step(policy, ids, mask, torch.arange(5).repeat(2, 1))
    assert logits.shape == (2, 44) and cache is not None


def test_rollout_needs_disabled_autoreset():
    import gymnasium as gym

    envs = gym.make_vec("prefgym/ToyTarget-v0", num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(ValueError, match="autoreset disabled"):
        generate_rollout(tiny_policy(44), envs)
