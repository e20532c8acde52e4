"""stable-baselines3 trains on a prefgym env as on any Gymnasium env (compliance smoke test)."""

from __future__ import annotations

import gymnasium as gym

import prefgym  # noqa: F401


def test_sb3_ppo_runs_on_a_toy_env():
    from stable_baselines3 import PPO

    env = gym.make("prefgym/ToyTarget-v0")
    model = PPO("MultiInputPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
