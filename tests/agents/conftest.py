"""Fixtures for agent tests: a tiny random-init GPT-2 for the toy env's character vocabulary."""

from __future__ import annotations

import pytest

import prefgym  # noqa: F401  (registers the env ids)


def tiny_policy(seed: int = 0):
    from prefgym.models import build_policy

    return build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2, n_positions=64, seed=seed)


@pytest.fixture
def policy():
    return tiny_policy()


@pytest.fixture
def toy_env():
    from prefgym.rollout import make_rollout_env

    def make(num_envs: int = 16, env_id: str = "prefgym/ToyTarget-v0", **kwargs):
        return make_rollout_env(env_id, num_envs=num_envs, **kwargs)

    return make
