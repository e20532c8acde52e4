"""``TokenVectorEnv``: a natively batched token env (numpy arrays, no Python loop over sub-envs).

It is every built-in id's ``vector_entry_point``, so ``gymnasium.make_vec(id, num_envs=64,
vectorization_mode="vector_entry_point")`` builds it. All episodes that end in a step are
scored in one batched preference call.

Autoreset (``metadata["autoreset_mode"]``):
  * ``"next_step"`` (Gymnasium's default): a sub-env that ended is reset on the following
    ``step``, whose action for it is ignored.
  * ``"disabled"``: a sub-env that ended is frozen — its actions are ignored and it returns
    reward 0 with ``terminated = truncated = False`` — until ``reset(options={"reset_mask": m})``.
    This is the training fast path (:func:`prefgym.rollout.generate_rollout`): the whole batch
    starts together, so an agent keeps one KV cache for it.

Example:
    >>> import gymnasium as gym, numpy as np, prefgym
    >>> envs = gym.make_vec("prefgym/ToyTarget-v0", num_envs=4, vectorization_mode="vector_entry_point")
    >>> obs, info = envs.reset(seed=0)
    >>> obs["input_ids"].shape
    (4, 16)
    >>> obs, rewards, terminated, truncated, info = envs.step(np.zeros(4, dtype=np.int64))
    >>> bool(terminated.all()), info["completion"].tolist()
    (True, ['', '', '', ''])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from gymnasium.spaces import MultiDiscrete
from gymnasium.utils import seeding

from prefgym.envs.core import EnvConfig, TokenBatch, check_actions
from prefgym.envs.token_env import token_spaces

AUTORESET_MODES = {"next_step": AutoresetMode.NEXT_STEP, "disabled": AutoresetMode.DISABLED}


class TokenVectorEnv(VectorEnv):
    """``num_envs`` token episodes stepped together; arguments as :class:`~prefgym.envs.token_env.TokenEnv`
    plus ``num_envs`` and ``autoreset_mode`` (``"next_step"`` or ``"disabled"``)."""

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, tokenizer: Any = None, prompts: Any = None, preference: Any = None,
                 max_prompt_tokens: int = 64, max_new_tokens: int = 16,
                 stop_strings: list[str] | tuple[str, ...] = (), reward_mode: str = "terminal",
                 segment_delimiter: str = "\n", split: str = "train", gold_preference: Any = None,
                 prompt_order: str = "random", autoreset_mode: str | AutoresetMode = "next_step",
                 render_mode: str | None = None):
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.config = EnvConfig.build(tokenizer, prompts, preference, max_prompt_tokens, max_new_tokens,
                                      stop_strings, reward_mode, segment_delimiter, split, gold_preference)
        if prompt_order not in ("random", "sequential"):
            raise ValueError(f"prompt_order must be 'random' or 'sequential', got {prompt_order!r}")
        self.num_envs = int(num_envs)
        self.prompt_order = prompt_order
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "autoreset_mode": _autoreset_mode(autoreset_mode)}
        self.single_observation_space, self.single_action_space = token_spaces(self.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = MultiDiscrete(np.full(self.num_envs, self.single_action_space.n), seed=None)
        self._batch = TokenBatch(self.config, self.num_envs)
        self._pending_reset = np.zeros(self.num_envs, dtype=bool)  # NEXT_STEP: reset on the next step
        self._next_index = 0
        self._np_random, _ = seeding.np_random()

    @property
    def tokenizer(self) -> Any:
        return self.config.tokenizer

    @property
    def finished(self) -> np.ndarray:
        """Which sub-envs have ended and not been reset yet, shape ``(num_envs,)``."""
        return self._batch.finished.copy()

    @property
    def prompt_split(self) -> list[str]:
        return self.config.prompts[self.config.split]

    def _observations(self) -> dict[str, np.ndarray]:
        return {"input_ids": self._batch.input_ids.copy(), "attention_mask": self._batch.attention_mask.copy()}

    def _draw_prompts(self, count: int) -> list[str]:
        split = self.prompt_split
        if self.prompt_order == "sequential":
            indices = (self._next_index + np.arange(count)) % len(split)
            self._next_index += count
        else:
            indices = self._np_random.integers(len(split), size=count)
        return [split[i] for i in indices]

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        """Reset all sub-envs, or those in ``options["reset_mask"]``; ``options["prompts"]`` fixes the prompts."""
        if seed is not None:
            self._np_random, _ = seeding.np_random(seed if isinstance(seed, int) else int(seed[0]))
            self._next_index = 0
        options = options or {}
        mask = np.asarray(options.get("reset_mask", np.ones(self.num_envs, dtype=bool)))
        if mask.dtype != bool or mask.shape != (self.num_envs,):
            raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},), got {mask.dtype} {mask.shape}")
        rows = np.flatnonzero(mask)
        prompts = options.get("prompts")
        if prompts is None:
            prompts = self._draw_prompts(len(rows))
        elif len(prompts) != len(rows):
            raise ValueError(f"options['prompts'] has {len(prompts)} prompts for {len(rows)} sub-envs being reset")
        self._batch.reset_rows(rows, list(prompts))
        self._pending_reset[rows] = False
        return self._observations(), {"prompt": np.array(self._batch.prompts, dtype=object)}

    def step(self, actions: Any):
        actions = check_actions(actions, self.num_envs, self._batch.vocab_size)
        restarting = self._pending_reset.copy()
        if restarting.any():
            rows = np.flatnonzero(restarting)
            self._batch.reset_rows(rows, self._draw_prompts(len(rows)))
            self._pending_reset[rows] = False
        elif self._batch.finished.all() and self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP:
            raise RuntimeError("step() called before reset(); call envs.reset(seed=...) first")
        active = ~self._batch.finished & ~restarting
        rewards, terminated, truncated, ends = self._batch.step(actions, active)
        if self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP:
            self._pending_reset[ends["rows"]] = True
        return self._observations(), rewards, terminated, truncated, self._episode_infos(ends)

    def _episode_infos(self, ends: dict) -> dict[str, Any]:
        """Gymnasium vector infos: one array per key plus a ``_key`` mask of the sub-envs that have it."""
        rows = ends["rows"]
        if not len(rows):
            return {}
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[rows] = True
        infos: dict[str, Any] = {}

        def put(key: str, values: Any, dtype: Any) -> None:
            array = np.zeros(self.num_envs, dtype=dtype) if dtype is not object else np.full(self.num_envs, None, dtype=object)
            array[rows] = values
            infos[key], infos[f"_{key}"] = array, mask.copy()

        put("prompt", [self._batch.prompts[r] for r in rows], object)
        put("completion", ends["completions"], object)
        put("num_tokens", self._batch.num_generated[rows], np.int64)
        for key, values in ends["parts"].items():
            put(key, values, np.float64)
        return infos

    def render(self) -> list[str] | None:
        if self.render_mode != "ansi":
            return None
        return [self._batch.prompts[r] + self._batch.completion_text(r) for r in range(self.num_envs)]


def _autoreset_mode(mode: str | AutoresetMode) -> AutoresetMode:
    if isinstance(mode, AutoresetMode):
        if mode not in AUTORESET_MODES.values():
            raise ValueError(f"TokenVectorEnv supports autoreset modes {list(AUTORESET_MODES)}, not {mode}")
        return mode
    try:
        return AUTORESET_MODES[str(mode).lower()]
    except KeyError:
        raise ValueError(f"autoreset_mode must be one of {list(AUTORESET_MODES)}, got {mode!r}") from None
