"""Every registered prefgym env passes Gymnasium's checker; make / make_vec / third-party ids work."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import prefgym  # noqa: F401
from prefgym.commands.envs import prefgym_specs
from prefgym.envs.registration import BUILTIN_ENVS

ALL_IDS = sorted(spec.id for spec in prefgym_specs())


def test_builtin_ids_are_registered():
    assert set(BUILTIN_ENVS) <= set(ALL_IDS)
    assert {"prefgym/PEP8-v0", "prefgym/Sentiment-v0", "prefgym/PII-v0", "prefgym/Arithmetic-v0"} <= set(ALL_IDS)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_spec_kwargs_are_json_and_rebuild_the_same_env(env_id):
    spec = gym.spec(env_id)
    rebuilt = gym.envs.registration.EnvSpec.from_json(spec.to_json())
    assert rebuilt.kwargs == spec.kwargs
    a, b = gym.make(spec), gym.make(rebuilt)
    obs_a, _ = a.reset(seed=3)
    obs_b, _ = b.reset(seed=3)
    np.testing.assert_array_equal(obs_a["input_ids"], obs_b["input_ids"])
    json.dumps(spec.kwargs)


@pytest.mark.parametrize("env_id", ["prefgym/ToyTarget-v0", "prefgym/Arithmetic-v0"])
def test_make_vec_with_vector_entry_point(env_id):
    envs = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    assert type(envs.unwrapped).__name__ == "TokenVectorEnv"
    obs, _ = envs.reset(seed=0)
    assert obs["input_ids"].shape == (3, gym.spec(env_id).kwargs["max_prompt_tokens"] + gym.spec(env_id).kwargs["max_new_tokens"])
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP


def test_make_vec_sync_mode_also_works():
    envs = gym.make_vec("prefgym/ToyTarget-v0", num_envs=2, vectorization_mode="sync")
    obs, _ = envs.reset(seed=0)
    assert obs["input_ids"].shape == (2, 16)


def test_third_party_package_registers_and_makes_its_env(fixtures_on_path):
    env = gym.make("thirdparty_prefs:Exclaim-v0")
    env.reset(seed=0)
    dot = env.unwrapped.tokenizer.convert_tokens_to_ids(".")
    for _ in range(4):
        _, reward, terminated, truncated, info = env.step(dot)
    assert truncated and reward == 4.0 and info["completion"] == "...."
    check_env(env.unwrapped, skip_render_check=True)


def test_unknown_env_id_is_a_clear_error():
    with pytest.raises(gym.error.Error, match="PEP9"):
        gym.make("prefgym/PEP9-v0")


def test_envs_command_lists_builtin_ids(capsys):
    from prefgym.cli import main

    assert main(["envs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert "prefgym/PEP8-v0" in listed and listed["prefgym/PEP8-v0"]["preference"]["_target_"].endswith("PEP8Scorer")
