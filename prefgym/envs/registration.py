"""The built-in environment ids, registered in Gymnasium's own registry.

One flat list, string entry points (nothing heavy is imported until ``gymnasium.make``),
kwargs that are plain JSON (components as Hydra ``_target_`` dicts) so that an env spec can
be written into a result file and rebuilt exactly. A changed reward, prompt set or
observation is a new version (``-v1``), never an edit of a released id.

Example:
    >>> import gymnasium as gym, prefgym
    >>> gym.spec("prefgym/PEP8-v0").kwargs["preference"]["_target_"]
    'prefgym.preferences.PEP8Scorer'
"""

from __future__ import annotations

from typing import Any

ENTRY_POINT = "prefgym.envs.token_env:TokenEnv"
VECTOR_ENTRY_POINT = "prefgym.envs.vector_env:TokenVectorEnv"
CODE_TOKENIZER = "prefgym/bpe-8k"

CODE_STOPS = ["\ndef ", "\nclass ", "\nif __name__", "\n\n\n"]

BUILTIN_ENVS: dict[str, dict[str, Any]] = {
    "prefgym/PEP8-v0": dict(
        tokenizer=CODE_TOKENIZER,
        prompts={"_target_": "prefgym.data.prompts.stdlib_function_prompts"},
        preference={"_target_": "prefgym.preferences.PEP8Scorer"},
        max_prompt_tokens=64,
        max_new_tokens=64,
        stop_strings=CODE_STOPS,
        segment_delimiter="\n",
    ),
    # v1: an empty function body is a violation (not valid Python). Under v0's PHF metric an
    # empty completion scores as perfectly clean, and RL agents learn to write nothing.
    "prefgym/PEP8-v1": dict(
        tokenizer=CODE_TOKENIZER,
        prompts={"_target_": "prefgym.data.prompts.stdlib_function_prompts"},
        preference={"_target_": "prefgym.preferences.PEP8Scorer", "empty_body_violation": True},
        max_prompt_tokens=64,
        max_new_tokens=64,
        stop_strings=CODE_STOPS,
        segment_delimiter="\n",
    ),
    "prefgym/Sentiment-v0": dict(
        tokenizer=CODE_TOKENIZER,
        prompts={"_target_": "prefgym.data.prompts.prose_prompts"},
        preference={"_target_": "prefgym.preferences.SentimentScorer"},
        max_prompt_tokens=32,
        max_new_tokens=32,
        stop_strings=["\n\n"],
        segment_delimiter=". ",
    ),
    "prefgym/PII-v0": dict(
        tokenizer=CODE_TOKENIZER,
        prompts={"_target_": "prefgym.data.prompts.pii_prompts"},
        preference={"_target_": "prefgym.preferences.PIIScorer"},
        max_prompt_tokens=32,
        max_new_tokens=32,
        stop_strings=["\n\n"],
        segment_delimiter=". ",
    ),
    "prefgym/Arithmetic-v0": dict(
        tokenizer=CODE_TOKENIZER,
        prompts={"_target_": "prefgym.data.prompts.arithmetic_prompts"},
        preference={"_target_": "prefgym.preferences.ArithmeticScorer"},
        max_prompt_tokens=16,
        max_new_tokens=8,
        stop_strings=["\n"],
    ),
    # Toy envs with a known optimum (reward 1.0: every generated character is "a"; and a
    # completion of exactly 12 characters). Character-level vocabulary, so agents learn in seconds.
    "prefgym/ToyTarget-v0": dict(
        tokenizer="prefgym/toy-chars",
        prompts={"train": ["the ", "a cat ", "be ", "we see "], "eval": ["one ", "dog "]},
        preference={"_target_": "prefgym.preferences.TargetCharScorer", "target": "a"},
        max_prompt_tokens=8,
        max_new_tokens=8,
    ),
    "prefgym/ToyLength-v0": dict(
        tokenizer="prefgym/toy-chars",
        prompts={"train": ["the ", "a cat ", "be ", "we see "], "eval": ["one ", "dog "]},
        preference={"_target_": "prefgym.preferences.LengthScorer", "target_chars": 12},
        max_prompt_tokens=8,
        max_new_tokens=24,
    ),
}


# v2: as v1, but each prompt ends at its colon (``def f(a):``, no newline). prefgym/bpe-8k
# merges a newline with the next line's indentation, so after v0/v1's ``def f(a):\n`` the
# base model continues at column 0 (E112 "expected an indented block" was the commonest
# violation of its samples); here it writes ``"\n   "`` + ``" return"`` as in training text.
# A completion that ends inside brackets or a string counts one violation: pycodestyle stops
# there, and text after an unclosed docstring would go unchecked (RL finds that at once).
# Dense segment rewards (reward_mode="segment") charge each line about its own violations
# (PEP8Scorer.prefix_score with a 128-char floor; v0/v1 divide by the prefix's length).
BUILTIN_ENVS["prefgym/PEP8-v2"] = {
    **BUILTIN_ENVS["prefgym/PEP8-v1"],
    "prompts": {"_target_": "prefgym.data.prompts.stdlib_function_prompts", "newline": False},
    "preference": {"_target_": "prefgym.preferences.PEP8Scorer", "empty_body_violation": True,
                   "unfinished_violation": True, "prefix_min_chars": 128},
}

# Learned-reward variants (prefgym.reward): the reward is a shipped Bradley-Terry reward model
# (recipe command and sha256 in its reward_config.json); the simulated scorer stays as the
# held-out gold score, reported as info["gold/*"] every episode, so over-optimisation shows.
BUILTIN_ENVS["prefgym/PEP8-Learned-v0"] = {
    **BUILTIN_ENVS["prefgym/PEP8-v0"],
    "preference": {"_target_": "prefgym.reward.LearnedRewardModel", "path": "prefgym/pep8-rm"},
    "gold_preference": {"_target_": "prefgym.preferences.PEP8Scorer"},
}
# v1: gold = PEP8-v1's scorer (an empty function body is a violation), the same learned reward.
BUILTIN_ENVS["prefgym/PEP8-Learned-v1"] = {
    **BUILTIN_ENVS["prefgym/PEP8-v1"],
    "preference": {"_target_": "prefgym.reward.LearnedRewardModel", "path": "prefgym/pep8-rm"},
    "gold_preference": dict(BUILTIN_ENVS["prefgym/PEP8-v1"]["preference"]),
}
BUILTIN_ENVS["prefgym/Sentiment-Learned-v0"] = {
    **BUILTIN_ENVS["prefgym/Sentiment-v0"],
    "preference": {"_target_": "prefgym.reward.LearnedRewardModel", "path": "prefgym/sentiment-rm"},
    "gold_preference": {"_target_": "prefgym.preferences.SentimentScorer"},
}

# The shipped base policy that suits each env (``prefgym rollout`` / ``prefgym train`` default to it).
DEFAULT_POLICIES: dict[str, str] = {
    "prefgym/PEP8-v0": "prefgym/tiny-code",
    "prefgym/PEP8-v1": "prefgym/tiny-code",
    "prefgym/PEP8-v2": "prefgym/tiny-code-v2",
    "prefgym/PEP8-Learned-v0": "prefgym/tiny-code",
    "prefgym/PEP8-Learned-v1": "prefgym/tiny-code",
    "prefgym/Sentiment-Learned-v0": "prefgym/tiny-prose",
    "prefgym/Arithmetic-v0": "prefgym/tiny-code",
    "prefgym/Sentiment-v0": "prefgym/tiny-prose",
    "prefgym/PII-v0": "prefgym/tiny-prose",
}


def register_builtin_envs() -> None:
    """Register every built-in id (idempotent: ids already registered are left alone)."""
    from gymnasium.envs.registration import register, registry

    for env_id, kwargs in BUILTIN_ENVS.items():
        if env_id in registry:
            continue
        register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs=kwargs,
            # TokenEnv stops episodes itself (EOS / stop string / max_new_tokens); a
            # TimeLimit wrapper on top would only hide that logic.
            max_episode_steps=None,
            disable_env_checker=False,
        )
