"""``SequenceEnv``: the bandit view of a token env — one step is one whole completion.

For agents that think in completions (best-of-n, GRPO, RLOO, DPO). The action is the
completion's token ids (``max_new_tokens`` wide; anything after EOS or a stop string is
ignored, and ``pad_id`` may fill the tail); the token env underneath applies exactly the same
stop rules and scoring, so rewards agree with the token-level view.

Example:
    >>> import gymnasium as gym, numpy as np, prefgym
    >>> from prefgym.envs.sequence import SequenceEnv
    >>> env = SequenceEnv(gym.make("prefgym/ToyTarget-v0"))
    >>> obs, _ = env.reset(seed=0)
    >>> a = env.unwrapped.tokenizer.convert_tokens_to_ids("a")
    >>> _, reward, terminated, _, info = env.step(np.full(8, a))
    >>> reward, terminated, info["completion"]
    (1.0, True, 'aaaaaaaa')
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class SequenceEnv(gym.Wrapper):
    """Wrap a :class:`~prefgym.envs.token_env.TokenEnv` so that one action is a whole completion."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        base = env.unwrapped
        if not hasattr(base, "config") or not hasattr(base.config, "max_new_tokens"):
            raise TypeError("SequenceEnv wraps a prefgym TokenEnv (gymnasium.make('prefgym/...'))")
        vocab = base.action_space.n
        self.action_space = spaces.Box(0, vocab - 1, shape=(base.config.max_new_tokens,), dtype=np.int64)

    def step(self, action: Any):
        tokens = np.asarray(action)
        if tokens.ndim != 1 or len(tokens) == 0 or len(tokens) > self.action_space.shape[0]:
            raise ValueError(
                f"a SequenceEnv action is 1-D token ids of length 1..{self.action_space.shape[0]}, got shape {tokens.shape}"
            )
        total, obs, info = 0.0, None, {}
        for token in tokens:
            obs, reward, terminated, truncated, info = self.env.step(token)
            total += float(reward)
            if terminated or truncated:
                return obs, total, True, False, info
        raise ValueError(
            f"the completion did not end within its {len(tokens)} tokens: end it with EOS, a stop "
            f"string, or pass all max_new_tokens={self.action_space.shape[0]} tokens"
        )
