"""The batched episode state shared by :class:`TokenEnv` (batch of 1) and :class:`TokenVectorEnv`.

Observation layout (fixed width ``max_length = max_prompt_tokens + max_new_tokens``)::

    column:  0 ........ P-1 | P ........... P+N-1
             [pad.. prompt] | [gen_0 gen_1 .. pad]
             left-padded    | generated tokens, appended left to right

The prompt is **left-padded** into the first ``P`` columns and generated token ``t`` sits in
column ``P + t``; ``attention_mask`` is 1 on real tokens. This is the layout that HF
``generate`` uses for batched decoder-only models, so an agent can feed an observation to a
causal LM as it is (position ids = ``cumsum(attention_mask) - 1``) and every row appends at
the same column, which is what makes a shared KV cache across the batch possible.

Episodes end with ``terminated`` on the EOS token or a stop string (the completion text is
cut before the stop string) and ``truncated`` after ``max_new_tokens``.

Rewards: ``reward_mode="terminal"`` gives the preference score on the final step and 0
before. ``reward_mode="segment"`` gives a dense, potential-based reward: each time the
completion finishes a segment (ends with ``segment_delimiter``, e.g. a newline for code),
the reward is ``potential(text so far) - potential(text at the previous segment end)``; the
final step adds ``score - potential``, so rewards always sum to the terminal score. The
potential is the preference model's ``prefix_score`` where it has one (PEP8's charges each
line about its own violations), else its ``score``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from prefgym.data.prompts import load_prompts
from prefgym.tokenization import load_tokenizer

REWARD_MODES = ("terminal", "segment")


@dataclasses.dataclass
class EnvConfig:
    """Everything a token env is built from; every field is plain data or a built component.

    Example:
        >>> cfg = EnvConfig.build(tokenizer="prefgym/toy-chars", prompts=["ab"],
        ...     preference={"_target_": "prefgym.preferences.TargetCharScorer"})
        >>> cfg.max_length
        80
    """

    tokenizer: Any
    prompts: dict[str, list[str]]
    preference: Any
    max_prompt_tokens: int = 64
    max_new_tokens: int = 16
    stop_strings: tuple[str, ...] = ()
    reward_mode: str = "terminal"
    segment_delimiter: str = "\n"
    split: str = "train"
    gold_preference: Any = None

    @property
    def max_length(self) -> int:
        return self.max_prompt_tokens + self.max_new_tokens

    @classmethod
    def build(cls, tokenizer: Any, prompts: Any, preference: Any, max_prompt_tokens: int = 64,
              max_new_tokens: int = 16, stop_strings: list[str] | tuple[str, ...] = (),
              reward_mode: str = "terminal", segment_delimiter: str = "\n", split: str = "train",
              gold_preference: Any = None) -> "EnvConfig":
        """Resolve names, paths and ``_target_`` dicts into components and validate everything."""
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
        for name, value in (("max_prompt_tokens", max_prompt_tokens), ("max_new_tokens", max_new_tokens)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(stop_strings, str) or any(not isinstance(s, str) or not s for s in stop_strings):
            raise ValueError(f"stop_strings must be a list of non-empty strings, got {stop_strings!r}")
        splits = load_prompts(prompts)
        if split not in splits:
            raise ValueError(f"unknown prompt split {split!r}; this env has splits {sorted(splits)}")
        return cls(
            tokenizer=load_tokenizer(tokenizer),
            prompts=splits,
            preference=_build_preference(preference),
            max_prompt_tokens=int(max_prompt_tokens),
            max_new_tokens=int(max_new_tokens),
            stop_strings=tuple(stop_strings),
            reward_mode=reward_mode,
            segment_delimiter=segment_delimiter,
            split=split,
            gold_preference=None if gold_preference is None else _build_preference(gold_preference),
        )


def _build_preference(spec: Any) -> Any:
    from prefgym.preferences import as_preference_model

    if isinstance(spec, dict):
        if "_target_" not in spec:
            raise ValueError(f"a preference dict needs a '_target_' key naming its class; got keys {sorted(spec)}")
        from prefgym.utils.config import instantiate

        spec = instantiate(spec)
    return as_preference_model(spec)


class TokenBatch:
    """Prompt + generated tokens of ``num_envs`` episodes in fixed-width numpy buffers.

    Plain state and vectorised updates; the Gymnasium classes around it add spaces, seeding
    and the reset/autoreset rules.
    """

    def __init__(self, config: EnvConfig, num_envs: int):
        self.config = config
        self.num_envs = num_envs
        tok = config.tokenizer
        self.vocab_size = len(tok)
        self.pad_id = int(tok.pad_token_id)
        self.eos_id = None if tok.eos_token_id is None else int(tok.eos_token_id)
        width = config.max_length
        self.input_ids = np.full((num_envs, width), self.pad_id, dtype=np.int64)  # (B, L)
        self.attention_mask = np.zeros((num_envs, width), dtype=np.int8)  # (B, L)
        self.num_generated = np.zeros(num_envs, dtype=np.int64)  # (B,)
        self.finished = np.ones(num_envs, dtype=bool)  # (B,) True until the first reset
        self.prompts: list[str] = [""] * num_envs
        self.potential = np.zeros(num_envs, dtype=np.float64)  # (B,) score at the last segment end
        self.segments_seen = np.zeros(num_envs, dtype=np.int64)  # (B,)
        self._stop_window = max((len(s) for s in config.stop_strings), default=0) + 1
        self._encode_cache: dict[str, list[int]] = {}

    # -- resetting -------------------------------------------------------------------------
    def encode_prompt(self, prompt: str) -> list[int]:
        ids = self._encode_cache.get(prompt)
        if ids is None:
            ids = self.config.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            if len(ids) > self.config.max_prompt_tokens:
                raise ValueError(
                    f"prompt is {len(ids)} tokens long but max_prompt_tokens={self.config.max_prompt_tokens}: "
                    f"{prompt[:60]!r}...; raise max_prompt_tokens (gymnasium.make(id, max_prompt_tokens=...)) "
                    "or shorten the prompt"
                )
            if not ids:
                raise ValueError("prompt encodes to zero tokens; an episode needs at least one prompt token")
            self._encode_cache[prompt] = ids
        return ids

    def reset_rows(self, rows: np.ndarray, prompts: list[str]) -> None:
        """Start new episodes in ``rows`` (indices) with the given prompt texts."""
        encoded = [self.encode_prompt(p) for p in prompts]  # validate all before touching state
        p_width = self.config.max_prompt_tokens
        self.input_ids[rows] = self.pad_id
        self.attention_mask[rows] = 0
        for row, prompt, ids in zip(rows, prompts, encoded):
            self.input_ids[row, p_width - len(ids):p_width] = ids
            self.attention_mask[row, p_width - len(ids):p_width] = 1
            self.prompts[row] = prompt
        self.num_generated[rows] = 0
        self.finished[rows] = False
        self.potential[rows] = 0.0
        self.segments_seen[rows] = 0

    # -- stepping ----------------------------------------------------------------------------
    def append(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Append ``actions`` to the ``active`` rows; return (terminated, truncated) for all rows."""
        rows = np.flatnonzero(active)
        cols = self.config.max_prompt_tokens + self.num_generated[rows]
        self.input_ids[rows, cols] = actions[rows]
        self.attention_mask[rows, cols] = 1
        self.num_generated[rows] += 1
        terminated = np.zeros(self.num_envs, dtype=bool)
        if self.eos_id is not None:
            terminated[rows] = actions[rows] == self.eos_id
        if self.config.stop_strings:
            terminated[rows] |= self._stop_string_hit(rows)
        truncated = active & ~terminated & (self.num_generated >= self.config.max_new_tokens)
        return terminated, truncated

    def _stop_string_hit(self, rows: np.ndarray) -> np.ndarray:
        # Only the last few tokens can complete a stop string that was absent a step ago; early
        # in an episode the prompt's tail is prepended, so "\ndef " matches right after a
        # prompt that ends in a newline.
        width_p, window = self.config.max_prompt_tokens, self._stop_window
        counts = self.num_generated[rows]
        slices = [self.input_ids[r, width_p + max(n - window, 0):width_p + n] for r, n in zip(rows, counts)]
        texts = self.config.tokenizer.batch_decode(slices, skip_special_tokens=True)
        prefixes = [self._prompt_tail(r) if n <= window else "" for r, n in zip(rows, counts)]
        return np.array([self._first_stop(p + t, len(p)) >= 0 for p, t in zip(prefixes, texts)], dtype=bool)

    def _prompt_tail(self, row: int) -> str:
        return self.prompts[row][len(self.prompts[row]) - self._stop_window + 2:] if self._stop_window > 2 else ""

    def _first_stop(self, text: str, prefix_len: int) -> int:
        """Start of the earliest stop string in ``text`` that ends after ``prefix_len``, else -1."""
        starts = [text.find(s, max(prefix_len - len(s) + 1, 0)) for s in self.config.stop_strings]
        return min((i for i in starts if i >= 0), default=-1)

    def completion_ids(self, row: int) -> np.ndarray:
        start = self.config.max_prompt_tokens
        return self.input_ids[row, start:start + self.num_generated[row]]

    def completion_text(self, row: int) -> str:
        """Decoded completion without special tokens, cut before the first stop string."""
        text = self.config.tokenizer.decode(self.completion_ids(row), skip_special_tokens=True)
        if not self.config.stop_strings:
            return text
        prefix = self._prompt_tail(row)
        cut = self._first_stop(prefix + text, len(prefix))
        return text if cut < 0 else text[:max(cut - len(prefix), 0)]

    def score_rows(self, rows: np.ndarray, texts: list[str]) -> dict[str, np.ndarray]:
        """Score completions of ``rows`` in one batched preference call (plus gold, if set)."""
        prompts = [self.prompts[r] for r in rows]
        parts = _score_parts(self.config.preference, prompts, texts)
        if self.config.gold_preference is not None:
            gold = _score_parts(self.config.gold_preference, prompts, texts)
            parts.update({f"gold/{k}": v for k, v in gold.items()})
        return parts

    def segment_rewards(self, rows: np.ndarray) -> np.ndarray:
        """Dense rewards for active ``rows`` whose completion just finished a segment."""
        rewards = np.zeros(len(rows), dtype=np.float64)
        delimiter = self.config.segment_delimiter
        texts = [self.completion_text(r) for r in rows]
        counts = np.array([t.count(delimiter) for t in texts])
        new = np.flatnonzero(counts > self.segments_seen[rows])
        if len(new):
            cut = [texts[i][: texts[i].rfind(delimiter) + len(delimiter)] for i in new]
            scores = _prefix_score(self.config.preference, [self.prompts[rows[i]] for i in new], cut)
            rewards[new] = scores - self.potential[rows[new]]
            self.potential[rows[new]] = scores
            self.segments_seen[rows[new]] = counts[new]
        return rewards

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Append, detect ends, score finished rows in one batch; return (reward, terminated, truncated, ends).

        ``ends`` holds ``rows`` (indices that finished this step), their ``completions`` and
        the preference model's ``parts`` (each an array aligned with ``rows``).
        """
        terminated, truncated = self.append(actions, active)
        done = terminated | truncated
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        ends: dict[str, Any] = {"rows": np.flatnonzero(done), "completions": [], "parts": {}}
        if len(ends["rows"]):
            rows = ends["rows"]
            ends["completions"] = [self.completion_text(r) for r in rows]
            ends["parts"] = self.score_rows(rows, ends["completions"])
            rewards[rows] = ends["parts"]["score"] - self.potential[rows]
            self.finished[rows] = True
        if self.config.reward_mode == "segment":
            ongoing = np.flatnonzero(active & ~done)
            if len(ongoing):
                rewards[ongoing] = self.segment_rewards(ongoing)
        return rewards, terminated, truncated, ends


def _prefix_score(model: Any, prompts: list[str], texts: list[str]) -> np.ndarray:
    # A preference model may define the shaping potential of unfinished text (``prefix_score``,
    # e.g. PEP8's per-char score with a length floor); otherwise its score is the potential.
    scorer = getattr(model, "prefix_score", None) or model.score
    return np.asarray(scorer(prompts, texts), dtype=np.float64)


def _score_parts(model: Any, prompts: list[str], texts: list[str]) -> dict[str, np.ndarray]:
    # Scripted scorers report parts (violations, chars, ...); a bare PreferenceModel only a score.
    if hasattr(model, "score_parts"):
        return dict(model.score_parts(prompts, texts))
    return {"score": np.asarray(model.score(prompts, texts), dtype=np.float64)}


def check_actions(actions: Any, num_envs: int, vocab_size: int) -> np.ndarray:
    """Validate a batch of token ids: integer dtype, shape ``(num_envs,)``, each in ``[0, vocab_size)``."""
    array = np.asarray(actions)
    if array.dtype.kind not in "iu":
        raise TypeError(
            f"actions must be integer token ids, got dtype {array.dtype}; cast with np.asarray(a, dtype=np.int64)"
        )
    if array.shape != (num_envs,):
        raise ValueError(f"expected actions of shape ({num_envs},) — one token id per sub-env — got {array.shape}")
    bad = np.flatnonzero((array < 0) | (array >= vocab_size))
    if len(bad):
        raise ValueError(
            f"invalid token id {int(array[bad[0]])} at index {int(bad[0])}: actions must be in "
            f"[0, {vocab_size}) for this tokenizer (did the policy's vocabulary not match the env's?)"
        )
    return array.astype(np.int64, copy=False)
