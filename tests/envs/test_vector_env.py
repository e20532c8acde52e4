"""TokenVectorEnv: batched steps agree with TokenEnv, autoreset modes, infos, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import prefgym  # noqa: F401
from prefgym.envs.token_env import TokenEnv
from prefgym.envs.vector_env import TokenVectorEnv

TOY = dict(tokenizer="prefgym/toy-chars", prompts={"train": ["ab ", "c ", "dd "], "eval": ["e "]},
           preference={"_target_": "prefgym.preferences.TargetCharScorer", "target": "a"},
           max_prompt_tokens=4, max_new_tokens=3)


def test_batched_episodes_match_single_env_episodes():
    vec = TokenVectorEnv(num_envs=3, autoreset_mode="disabled", **TOY)
    single = TokenEnv(**TOY)
    prompts = ["ab ", "c ", "dd "]
    obs, _ = vec.reset(options={"prompts": prompts})
    rng = np.random.default_rng(0)
    actions = rng.integers(4, 44, size=(3, 3))
    vec_rewards = np.zeros(3)
    for t in range(3):
        obs, rewards, terminated, truncated, info = vec.step(actions[:, t])
        vec_rewards += rewards
    for row, prompt in enumerate(prompts):
        single_obs, _ = single.reset(options={"prompt": prompt})
        total = 0.0
        for t in range(3):
            single_obs, reward, _, _, single_info = single.step(actions[row, t])
            total += reward
        np.testing.assert_array_equal(single_obs["input_ids"], obs["input_ids"][row])
        assert total == pytest.approx(vec_rewards[row])
        assert info["completion"][row] == single_info["completion"]
    assert info["_completion"].all() and info["_score"].all()


def test_next_step_autoreset_restarts_finished_envs_on_the_following_step():
    vec = TokenVectorEnv(num_envs=2, **dict(TOY, max_new_tokens=2))
    vec.reset(seed=0)
    eos = vec.tokenizer.eos_token_id
    _, _, terminated, _, info = vec.step(np.array([eos, 4]))
    assert terminated.tolist() == [True, False] and info["_completion"].tolist() == [True, False]
    obs, rewards, terminated, truncated, _ = vec.step(np.array([4, 4]))
    # row 0 was reset (its action ignored); row 1 truncated at 2 tokens
    assert rewards[0] == 0.0 and not terminated[0] and not truncated[0]
    assert obs["attention_mask"][0, 4:].sum() == 0
    assert truncated[1]


def test_disabled_autoreset_freezes_finished_envs_until_reset_mask():
    vec = TokenVectorEnv(num_envs=2, autoreset_mode="disabled", **TOY)
    vec.reset(seed=0)
    eos = vec.tokenizer.eos_token_id
    vec.step(np.array([eos, 4]))
    before = vec._batch.input_ids[0].copy()
    _, rewards, terminated, truncated, _ = vec.step(np.array([4, 4]))
    assert rewards[0] == 0.0 and not terminated[0] and not truncated[0]
    np.testing.assert_array_equal(vec._batch.input_ids[0], before)
    assert vec.finished.tolist() == [True, False]
    vec.reset(options={"reset_mask": np.array([True, False])})
    assert vec.finished.tolist() == [False, False]
    assert vec._batch.num_generated.tolist() == [0, 2]


def test_seeded_reset_is_deterministic():
    a = TokenVectorEnv(num_envs=8, **TOY).reset(seed=5)[1]["prompt"].tolist()
    b = TokenVectorEnv(num_envs=8, **TOY).reset(seed=5)[1]["prompt"].tolist()
    c = TokenVectorEnv(num_envs=8, **TOY).reset(seed=6)[1]["prompt"].tolist()
    assert a == b and a != c


def test_gymnasium_vector_conventions():
    vec = gym.make_vec("prefgym/ToyTarget-v0", num_envs=4, vectorization_mode="vector_entry_point")
    assert vec.single_action_space == gym.spaces.Discrete(44)
    assert vec.action_space.shape == (4,)
    obs, _ = vec.reset(seed=0)
    assert vec.observation_space.contains(obs)


def test_vector_bad_input():
    vec = TokenVectorEnv(num_envs=2, **TOY)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.array([4, 4]))
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        vec.step(np.array([4, 4, 4]))
    with pytest.raises(TypeError, match="integer"):
        vec.step(np.array([4.0, 4.0]))
    with pytest.raises(ValueError, match="invalid token id 44"):
        vec.step(np.array([4, 44]))
    with pytest.raises(ValueError, match="autoreset_mode"):
        TokenVectorEnv(num_envs=2, autoreset_mode="same_step", **TOY)
    with pytest.raises(ValueError, match="num_envs"):
        TokenVectorEnv(num_envs=0, **TOY)
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(options={"reset_mask": np.array([1, 0])})
