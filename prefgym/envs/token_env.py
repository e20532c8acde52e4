"""``TokenEnv``: text generation as a single Gymnasium environment, one token per step.

Example:
    >>> import gymnasium as gym, prefgym
    >>> env = gym.make("prefgym/ToyTarget-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs["input_ids"].shape
    (16,)
    >>> a = env.unwrapped.tokenizer.convert_tokens_to_ids("a")
    >>> for _ in range(8):
    ...     obs, reward, terminated, truncated, info = env.step(a)
    >>> truncated, reward, info["completion"]
    (True, 1.0, 'aaaaaaaa')
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from prefgym.envs.core import EnvConfig, TokenBatch, check_actions


def token_spaces(config: EnvConfig) -> tuple[spaces.Dict, spaces.Discrete]:
    """Observation and action space of one sub-env (see :mod:`prefgym.envs.core` for the layout)."""
    vocab = len(config.tokenizer)
    width = config.max_length
    observation = spaces.Dict({
        "input_ids": spaces.Box(0, vocab - 1, shape=(width,), dtype=np.int64),
        "attention_mask": spaces.Box(0, 1, shape=(width,), dtype=np.int8),
    })
    return observation, spaces.Discrete(vocab)


def ends_to_episode_info(batch: TokenBatch, ends: dict, i: int) -> dict[str, Any]:
    """The ``info`` of the ``i``-th finished episode in ``ends``: prompt, completion, score parts."""
    row = int(ends["rows"][i])
    info: dict[str, Any] = {"prompt": batch.prompts[row], "completion": ends["completions"][i],
                            "num_tokens": int(batch.num_generated[row])}
    info.update({k: float(v[i]) for k, v in ends["parts"].items()})
    return info


class TokenEnv(gym.Env):
    """Prompt + tokens so far in, next token id out, preference reward at the end.

    Args:
        tokenizer: a built-in name (``prefgym/bpe-8k``, ``prefgym/toy-chars``), a local path or
            hub name of a HF tokenizer, or a tokenizer object.
        prompts: a prompt spec (see :func:`prefgym.data.prompts.load_prompts`).
        preference: a preference model or its ``{"_target_": ...}`` dict.
        max_prompt_tokens / max_new_tokens: the observation is ``max_prompt_tokens + max_new_tokens`` wide.
        stop_strings: end the episode (``terminated``) when the completion contains one.
        reward_mode: ``"terminal"`` or ``"segment"`` (dense, sums to the terminal score).
        segment_delimiter: what ends a segment in ``"segment"`` mode.
        split: which prompt split to draw from (``"train"`` or ``"eval"``).
        gold_preference: an optional held-out scorer reported in ``info`` as ``gold/*``.
        prompt_order: ``"random"`` (seeded) or ``"sequential"`` (cycles through the split).

    ``reset(options={"prompt": text})`` or ``options={"prompt_index": i}`` picks the prompt.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, tokenizer: Any, prompts: Any, preference: Any, max_prompt_tokens: int = 64,
                 max_new_tokens: int = 16, stop_strings: list[str] | tuple[str, ...] = (),
                 reward_mode: str = "terminal", segment_delimiter: str = "\n", split: str = "train",
                 gold_preference: Any = None, prompt_order: str = "random", render_mode: str | None = None):
        self.config = EnvConfig.build(tokenizer, prompts, preference, max_prompt_tokens, max_new_tokens,
                                      stop_strings, reward_mode, segment_delimiter, split, gold_preference)
        if prompt_order not in ("random", "sequential"):
            raise ValueError(f"prompt_order must be 'random' or 'sequential', got {prompt_order!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.prompt_order = prompt_order
        self.render_mode = render_mode
        self.observation_space, self.action_space = token_spaces(self.config)
        self._batch = TokenBatch(self.config, num_envs=1)
        self._next_index = 0

    @property
    def tokenizer(self) -> Any:
        return self.config.tokenizer

    @property
    def prompt_split(self) -> list[str]:
        return self.config.prompts[self.config.split]

    def _observation(self) -> dict[str, np.ndarray]:
        return {"input_ids": self._batch.input_ids[0].copy(), "attention_mask": self._batch.attention_mask[0].copy()}

    def _choose_prompt(self, options: dict | None) -> str:
        options = options or {}
        if "prompt" in options:
            return str(options["prompt"])
        split = self.prompt_split
        if "prompt_index" in options:
            index = int(options["prompt_index"])
            if not 0 <= index < len(split):
                raise IndexError(f"prompt_index {index} is out of range for a split of {len(split)} prompts")
            return split[index]
        if self.prompt_order == "sequential":
            self._next_index += 1
            return split[(self._next_index - 1) % len(split)]
        return split[int(self.np_random.integers(len(split)))]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._next_index = 0
        prompt = self._choose_prompt(options)
        self._batch.reset_rows(np.array([0]), [prompt])
        return self._observation(), {"prompt": prompt}

    def step(self, action: Any):
        if self._batch.finished[0]:
            raise RuntimeError("step() called after the episode ended (or before the first reset); call env.reset() first")
        action = np.asarray(action)
        if action.shape not in ((), (1,)):
            raise ValueError(f"TokenEnv takes one token id per step, got an action of shape {action.shape}")
        actions = check_actions(action.reshape(1), 1, self._batch.vocab_size)
        rewards, terminated, truncated, ends = self._batch.step(actions, np.ones(1, dtype=bool))
        info = ends_to_episode_info(self._batch, ends, 0) if len(ends["rows"]) else {}
        return self._observation(), float(rewards[0]), bool(terminated[0]), bool(truncated[0]), info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return self._batch.prompts[0] + self._batch.completion_text(0)
