"""Evaluation after training: deterministic given a seed, self-describing JSON, the CLI reproduces it."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

import prefgym  # noqa: F401
from prefgym.evaluate import DIRECTIONS, SCHEMA, evaluate_agent, heldout_blocks

HELDOUT = {"kind": "prompts", "block_size": 8, "max_blocks": 2}


def make_policy(seed: int = 0):
    from prefgym.models import build_policy

    return build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2, n_positions=64, seed=seed)


def as_agent(policy):
    from prefgym.rollout import generate_rollout

    return SimpleNamespace(policy=policy, act=lambda env, prompts, seed: generate_rollout(
        policy, env, prompts=prompts, seed=seed))


@pytest.fixture
def eval_env():
    from prefgym.rollout import make_rollout_env

    return make_rollout_env("prefgym/ToyTarget-v0", num_envs=4, split="eval")


def test_same_seed_same_metrics_and_base_has_zero_kl(eval_env):
    policy = make_policy()
    a = evaluate_agent(as_agent(policy), eval_env, policy, num_samples=8, seed=3, heldout=HELDOUT)
    b = evaluate_agent(as_agent(policy), eval_env, policy, num_samples=8, seed=3, heldout=HELDOUT)
    c = evaluate_agent(as_agent(policy), eval_env, policy, num_samples=8, seed=4, heldout=HELDOUT)
    assert a["metrics"] == b["metrics"]
    assert a["samples"] != c["samples"]
    assert a["metrics"]["kl_to_base"] == pytest.approx(0.0, abs=1e-5)
    assert a["samples"][0]["prompt"] in ("one ", "dog ")  # the eval split, in order
    assert a["cost"]["env_steps"] > 0


def test_an_agent_sampling_at_low_temperature_with_blocked_tokens_starts_at_zero_kl(eval_env):
    from prefgym.rollout import generate_rollout

    policy = make_policy()
    agent = SimpleNamespace(policy=policy, config=SimpleNamespace(temperature=0.5), blocked_token_ids=(5, 6),
                            act=lambda env, prompts, seed: generate_rollout(
                                policy, env, prompts=prompts, seed=seed, temperature=0.5, blocked_token_ids=(5, 6)))
    out = evaluate_agent(agent, eval_env, policy, num_samples=8, seed=0, heldout=HELDOUT)["metrics"]
    assert out["kl_to_base"] == pytest.approx(0.0, abs=1e-4)
    plain = SimpleNamespace(policy=policy, act=agent.act)  # the base at T=1: the agent is far from it
    assert evaluate_agent(plain, eval_env, policy, num_samples=8, seed=0, heldout=HELDOUT)["metrics"]["kl_to_base"] > 0.1


def test_kl_and_perplexity_of_a_different_policy(eval_env):
    base, other = make_policy(0), make_policy(1)
    out = evaluate_agent(as_agent(other), eval_env, base, num_samples=8, seed=0, heldout=HELDOUT)["metrics"]
    assert out["kl_to_base_k3"] > 0.0
    assert 1.0 < out["perplexity"] < 200.0  # a random init is near the vocabulary size (44)
    for n in (1, 2, 3):
        assert 0.0 <= out[f"distinct_{n}"] <= 1.0


def test_num_samples_must_fill_whole_batches(eval_env):
    policy = make_policy()
    with pytest.raises(ValueError, match="multiple"):
        evaluate_agent(as_agent(policy), eval_env, policy, num_samples=6, heldout=HELDOUT)


def test_heldout_blocks():
    from prefgym.tokenization import load_tokenizer

    tok = load_tokenizer("prefgym/toy-chars")
    blocks = heldout_blocks(tok, "prompts", block_size=4, max_blocks=3, prompts=["ab ", "cd "])
    assert blocks["input_ids"].shape == (3, 4)
    assert np.array_equal(blocks["input_ids"][:, 1:], blocks["labels"][:, :-1])
    with pytest.raises(ValueError, match="eval prompts"):
        heldout_blocks(tok, "prompts", block_size=4, max_blocks=1, prompts=[])


def compose(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from prefgym.train import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="test"):
        return hydra_compose("config", overrides=list(overrides))


def test_result_file_is_self_describing_and_the_cli_reproduces_it(tmp_path):
    from prefgym.evaluate import cli
    from prefgym.train import train

    train(compose("debug=toy", "agent=grpo"), tmp_path)
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["schema"] == SCHEMA and result["env_id"] == "prefgym/ToyTarget-v0"
    assert result["env_spec"]["id"] == "prefgym/ToyTarget-v0" and result["prompt_split"] == "eval"
    assert result["directions"] == DIRECTIONS and result["agent"]["_target_"] == "agents.grpo.GRPOAgent"
    assert len(result["checkpoint"]["sha256"]) == 64 and result["run_info"]["versions"]["torch"]
    assert set(result["base"]) == set(result["metrics"])
    assert all(math.isfinite(v) for v in result["metrics"].values())
    assert cli([str(tmp_path), "--out", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["metrics"] == result["metrics"]
