"""TokenEnv: observation layout, stops, rewards, determinism and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import prefgym  # noqa: F401
from prefgym.envs.token_env import TokenEnv
from prefgym.preferences import NonFiniteScoreError


def toy_env(**overrides) -> TokenEnv:
    kwargs = dict(tokenizer="prefgym/toy-chars", prompts={"train": ["ab ", "c "], "eval": ["d "]},
                  preference={"_target_": "prefgym.preferences.TargetCharScorer", "target": "a"},
                  max_prompt_tokens=4, max_new_tokens=5)
    kwargs.update(overrides)
    return TokenEnv(**kwargs)


def ids(env, text):
    return env.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_observation_is_left_padded_prompt_then_generated_tokens():
    env = toy_env()
    obs, info = env.reset(options={"prompt": "ab "})
    prompt = ids(env, "ab ")
    assert obs["input_ids"][:4].tolist() == [env.tokenizer.pad_token_id] + prompt
    assert obs["attention_mask"].tolist() == [0, 1, 1, 1, 0, 0, 0, 0, 0]
    obs, *_ = env.step(ids(env, "a")[0])
    assert obs["input_ids"][4] == ids(env, "a")[0] and obs["attention_mask"][4] == 1
    assert obs["attention_mask"][5:].sum() == 0


def test_truncation_at_max_new_tokens_and_terminal_reward():
    env = toy_env()
    env.reset(seed=0)
    a, b = ids(env, "a")[0], ids(env, "b")[0]
    rewards = []
    for token in [a, a, b, a, a]:
        _, reward, terminated, truncated, info = env.step(token)
        rewards.append(reward)
    assert not terminated and truncated
    assert rewards[:-1] == [0.0] * 4 and rewards[-1] == pytest.approx(0.8)
    assert info["completion"] == "aabaa" and info["score"] == pytest.approx(0.8)


def test_eos_terminates_and_is_not_part_of_the_completion():
    env = toy_env()
    env.reset(seed=0)
    env.step(ids(env, "a")[0])
    _, reward, terminated, truncated, info = env.step(env.tokenizer.eos_token_id)
    assert terminated and not truncated
    assert info["completion"] == "a" and reward == 1.0 and info["num_tokens"] == 2


def test_stop_string_terminates_and_cuts_the_completion():
    env = toy_env(stop_strings=["b."], max_new_tokens=8)
    env.reset(seed=0)
    for ch in "aab":
        _, _, terminated, _, _ = env.step(ids(env, ch)[0])
        assert not terminated
    _, reward, terminated, _, info = env.step(ids(env, ".")[0])
    assert terminated and info["completion"] == "aa" and reward == 1.0


def test_segment_rewards_are_dense_and_sum_to_the_terminal_score():
    env = toy_env(reward_mode="segment", segment_delimiter=" ", max_new_tokens=6)
    env.reset(seed=0)
    rewards = [env.step(ids(env, ch)[0])[1] for ch in "ab aa "]
    # segment "ab " scores 1/3 when it completes; the final score of "ab aa " is 3/6.
    assert rewards[2] == pytest.approx(1 / 3)
    assert rewards[0] == rewards[1] == 0.0
    assert sum(rewards) == pytest.approx(0.5)


def test_seeded_resets_are_deterministic():
    first = [toy_env().reset(seed=s)[1]["prompt"] for s in range(6)]
    second = [toy_env().reset(seed=s)[1]["prompt"] for s in range(6)]
    assert first == second and len(set(first)) == 2


def test_sequential_prompt_order_cycles_through_the_split():
    env = toy_env(prompt_order="sequential", split="eval")
    assert [env.reset()[1]["prompt"] for _ in range(2)] == ["d ", "d "]
    env = toy_env(prompt_order="sequential")
    assert [env.reset()[1]["prompt"] for _ in range(3)] == ["ab ", "c ", "ab "]


def test_gold_preference_is_reported_in_info():
    env = toy_env(gold_preference={"_target_": "prefgym.preferences.LengthScorer", "target_chars": 5})
    env.reset(seed=0)
    for _ in range(5):
        *_, info = env.step(ids(env, "a")[0])
    assert info["gold/score"] == 0.0 and info["score"] == 1.0


# -- bad input -------------------------------------------------------------------------------

def test_invalid_action_id_says_how_to_fix():
    env = toy_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"invalid token id 999.*\[0, 44\)"):
        env.step(999)
    with pytest.raises(ValueError, match="invalid token id -1"):
        env.step(-1)


def test_wrong_dtype_and_shape_are_rejected():
    env = toy_env()
    env.reset(seed=0)
    with pytest.raises(TypeError, match="integer token ids"):
        env.step(1.5)
    with pytest.raises(ValueError, match="one token id per step"):
        env.step(np.array([1, 2]))


def test_step_after_the_episode_ended_needs_reset():
    env = toy_env(max_new_tokens=1)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(4)
    env.reset(seed=0)
    env.step(4)
    with pytest.raises(RuntimeError, match="call env.reset"):
        env.step(4)


def test_prompt_longer_than_the_maximum_is_rejected():
    env = toy_env()
    with pytest.raises(ValueError, match="max_prompt_tokens=4"):
        env.reset(options={"prompt": "a long prompt"})


def test_scorer_returning_nan_is_a_clear_error(fixtures_on_path):
    env = toy_env(preference={"_target_": "prefgym.preferences.as_preference_model",
                              "obj": "thirdparty_prefs.scoring:nan_reward"})
    env.reset(seed=0)
    with pytest.raises(NonFiniteScoreError):
        for _ in range(5):
            env.step(4)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="reward_mode"):
        toy_env(reward_mode="dense")
    with pytest.raises(ValueError, match="split"):
        toy_env(split="test")
    with pytest.raises(ValueError, match="empty"):
        toy_env(prompts=[])
    with pytest.raises(ValueError, match="_target_"):
        toy_env(preference={"target": "a"})
    with pytest.raises(ValueError, match="unknown built-in tokenizer"):
        toy_env(tokenizer="prefgym/nope")
    with pytest.raises(gym.error.Error):
        gym.make("prefgym/ToyTarget-v7")


def test_tokenizer_by_local_path_or_object(tmp_path):
    from prefgym.tokenization import load_tokenizer

    tok = load_tokenizer("prefgym/toy-chars")
    tok.save_pretrained(tmp_path)
    by_path = toy_env(tokenizer=str(tmp_path))
    by_object = toy_env(tokenizer=tok)
    obs_path, _ = by_path.reset(options={"prompt": "ab "})
    obs_object, _ = by_object.reset(options={"prompt": "ab "})
    np.testing.assert_array_equal(obs_path["input_ids"], obs_object["input_ids"])
    with pytest.raises(OSError, match="could not load a tokenizer"):
        toy_env(tokenizer=str(tmp_path / "missing"))


def test_stop_string_spanning_the_prompt_boundary_counts_but_one_inside_the_prompt_does_not():
    env = toy_env(stop_strings=[" a"], max_new_tokens=8)
    env.reset(options={"prompt": "ab "})
    _, _, terminated, _, info = env.step(ids(env, "a")[0])
    assert terminated and info["completion"] == ""
    env = toy_env(stop_strings=["b "], max_new_tokens=8)
    env.reset(options={"prompt": "ab "})
    _, _, terminated, _, _ = env.step(ids(env, "a")[0])
    assert not terminated


def test_vector_and_single_env_agree_on_stops_whatever_the_batch():
    from prefgym.envs.vector_env import TokenVectorEnv

    kwargs = dict(tokenizer="prefgym/toy-chars", prompts=["ab "],
                  preference={"_target_": "prefgym.preferences.TargetCharScorer", "target": "a"},
                  max_prompt_tokens=4, max_new_tokens=6, stop_strings=["b a", "c."])
    rng = np.random.default_rng(0)
    alphabet = ids(toy_env(), "abc. ")
    sequences = rng.choice(alphabet, size=(32, 6))
    vec = TokenVectorEnv(num_envs=32, autoreset_mode="disabled", **kwargs)
    vec.reset(options={"prompts": ["ab "] * 32})
    done_at, vec_completions = np.full(32, -1), [None] * 32
    for t in range(6):
        _, _, term, trunc, info = vec.step(sequences[:, t])
        for row in np.flatnonzero(term | trunc):
            done_at[row], vec_completions[row] = t, info["completion"][row]
    single = TokenEnv(**kwargs)
    for row in range(32):
        single.reset(options={"prompt": "ab "})
        for t in range(6):
            *_, term, trunc, info = single.step(sequences[row, t])
            if term or trunc:
                assert t == done_at[row] and info["completion"] == vec_completions[row]
                break


def test_pep8_v1_counts_an_empty_body_as_a_violation_and_v0_does_not():
    import gymnasium as gym

    for env_id, expected in (("prefgym/PEP8-v0", 0.0), ("prefgym/PEP8-v1", -1.0)):
        env = gym.make(env_id)
        env.reset(options={"prompt": "def f(a):\n"})
        *_, terminated, _, info = env.step(env.unwrapped.tokenizer.eos_token_id)
        assert terminated and info["completion"] == "" and info["score"] == expected


def test_pep8_v2_prompts_end_at_the_colon_and_an_empty_body_is_a_violation():
    import gymnasium as gym

    env = gym.make("prefgym/PEP8-v2")
    _, info = env.reset(seed=0)
    prompt = info["prompt"]
    assert prompt.startswith("def ") and prompt.endswith(":"), prompt
    # the tokenizer's own newline+indent token starts the body, as in its training text
    tokenizer = env.unwrapped.tokenizer
    first = tokenizer("\n    return x")["input_ids"][0]
    assert tokenizer.decode([first]) == "\n   "
    *_, terminated, _, info = env.step(tokenizer.eos_token_id)
    assert terminated and info["completion"] == "" and info["score"] == -1.0


def test_pep8_v2_segment_rewards_charge_the_line_with_the_violation_and_sum_to_the_score():
    import gymnasium as gym

    env = gym.make("prefgym/PEP8-v2", reward_mode="segment", max_new_tokens=32, stop_strings=[])
    tokenizer = env.unwrapped.tokenizer
    env.reset(options={"prompt": "def f(a):"})
    body = "\n    x = (a,b)\n    y = 1\n    return x"  # one E231, on the first body line
    rewards = []
    for token in tokenizer(body)["input_ids"]:
        *_, reward, terminated, truncated, _ = env.step(token)
        rewards.append(reward)
        assert not (terminated or truncated)
    *_, reward, terminated, _, info = env.step(tokenizer.eos_token_id)
    assert terminated and info["score"] == pytest.approx(-1 / len(body))
    assert sum(rewards) + reward == pytest.approx(info["score"])  # potential-based: sums to the score
    nonzero = [r for r in rewards if r != 0.0]
    # the first body line's end charges its violation against the 128-char floor; no empty-body
    # penalty for the bare "\n" that starts the body, no refund when the clean line follows
    assert nonzero == [pytest.approx(-1 / 128)]


@pytest.mark.parametrize("completion", ['\n    """Open docstring, never closed\n    x = (a,b)', "\n    return f(a,\n"])
def test_pep8_v2_counts_text_left_inside_a_string_or_brackets_and_v1_does_not(completion):
    from prefgym.envs.registration import BUILTIN_ENVS
    from prefgym.utils.config import instantiate

    v1, v2 = (instantiate(BUILTIN_ENVS[f"prefgym/PEP8-{v}"]["preference"]) for v in ("v1", "v2"))
    assert v1.score_parts(["def f(a):\n"], [completion])["violations"].tolist() == [0]
    assert v2.score_parts(["def f(a):"], [completion])["violations"].tolist() == [1]
