"""stable-baselines3 compliance: SB3's PPO trains on a prefgym toy env (>= 256 steps)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


def test_sb3_ppo_runs_256_steps_on_toy_target():
    from stable_baselines3 import PPO

    env = gym.make("prefgym/ToyTarget-v0")
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert 0 <= int(np.asarray(action)) < env.action_space.n
