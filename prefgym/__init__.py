"""prefgym: the Gymnasium of learning from human preferences.

Text generation as a Gymnasium environment: the observation is the prompt plus the tokens
generated so far, the action is the next token id, and the reward comes from a preference
model (a simulated annotator or a learned Bradley-Terry reward model).

Importing prefgym is cheap: it only registers the built-in environment ids with Gymnasium
(string entry points); torch, transformers and the scorers load when an env is made.

Example:
    >>> import gymnasium as gym, prefgym
    >>> env = gym.make("prefgym/ToyTarget-v0")
    >>> obs, info = env.reset(seed=0)
    >>> sorted(obs)
    ['attention_mask', 'input_ids']
"""

from __future__ import annotations

__version__ = "0.1.0"

from prefgym.envs.registration import register_builtin_envs as _register_builtin_envs

_register_builtin_envs()

__all__ = ["__version__"]
