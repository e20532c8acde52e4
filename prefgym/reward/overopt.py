"""Reward over-optimisation, measured: proxy (learned) and gold (simulated) reward against KL.

Gao, Schulman & Hilton (2022), "Scaling Laws for Reward Model Overoptimization": optimise a
policy against a *proxy* reward model and watch the *gold* reward it was trained to imitate.
The proxy keeps rising with the KL distance from the base policy; the gold score rises, peaks
and then falls once the optimiser finds the proxy's mistakes (reward hacking).

Two optimisers, one command (``prefgym reward overopt``):

* **best-of-n** (no training): ``n_max`` samples of the base policy per eval prompt, scored
  by both rewards once; for each ``n`` the samples are split into groups of ``n`` and the
  proxy's favourite of each group kept. KL is the analytic ``log n - (n - 1) / n``.
* **PPO** (``agents.ppo.PPOAgent``, reached through its Hydra ``_target_``) trained with the
  learned model as the env's reward; every ``eval_every`` iterations the policy is evaluated
  with :func:`prefgym.evaluate.sample_metrics` (proxy score, gold score, sampled KL to base).

Writes ``overopt.json`` (every point) and ``overopt.png`` (proxy and gold vs KL).

Example:
    >>> import numpy as np
    >>> proxy = np.array([[0.0, 1.0, 2.0, 3.0]]); gold = np.array([[0.0, 1.0, 2.0, -5.0]])
    >>> best_of_n_curve(proxy, gold, [1, 2, 4])["gold"]  # n = 4 picks the proxy's best: a hack
    [-0.5, -2.0, -5.0]
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def best_of_n_curve(proxy: np.ndarray, gold: np.ndarray, ns: Sequence[int]) -> dict[str, list[float]]:
    """Mean proxy and gold score of best-of-n selection; ``proxy``/``gold`` are (prompts, n_max).

    Each prompt's ``n_max`` samples form ``n_max // n`` disjoint groups of ``n``; the proxy's
    argmax of each group is selected (so every sample is used once per ``n``).
    """
    prompts, n_max = proxy.shape
    out: dict[str, list[float]] = {"n": [], "kl": [], "proxy": [], "gold": []}
    for n in ns:
        if n > n_max or n < 1:
            raise ValueError(f"best-of-n needs 1 <= n <= n_max={n_max}, got {n}")
        groups = n_max // n
        p = proxy[:, :groups * n].reshape(prompts, groups, n)  # (P, G, n)
        g = gold[:, :groups * n].reshape(prompts, groups, n)
        pick = p.argmax(-1)[..., None]  # (P, G, 1)
        out["n"].append(int(n))
        out["kl"].append(math.log(n) - (n - 1) / n)
        out["proxy"].append(float(np.take_along_axis(p, pick, -1).mean()))
        out["gold"].append(float(np.take_along_axis(g, pick, -1).mean()))
    return out


def sample_scores(policy: Any, env: Any, prompts: list[str], n_max: int, seed: int,
                  temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(proxy, gold) scores, each (prompts, n_max), of ``n_max`` base samples per prompt.

    ``env`` scores with the proxy and reports the gold scorer as ``gold/score``; its
    ``num_envs`` must divide ``len(prompts)``.
    """
    from prefgym.rollout import generate_rollout

    batch = env.unwrapped.num_envs
    if len(prompts) % batch:
        raise ValueError(f"{len(prompts)} prompts is not a multiple of the env batch {batch}")
    proxy = np.zeros((len(prompts), n_max))
    gold = np.zeros((len(prompts), n_max))
    for k in range(n_max):
        for start in range(0, len(prompts), batch):
            rollout = generate_rollout(policy, env, prompts=prompts[start:start + batch],
                                       seed=seed + 1000 * k + start, temperature=temperature)
            proxy[start:start + batch, k] = rollout.scores.double().numpy()
            gold[start:start + batch, k] = rollout.infos["gold/score"]
    return proxy, gold


def ppo_curve(cfg: Any, policy: Any, base: Any, env: Any, eval_env: Any, log: Any = print) -> dict[str, list[float]]:
    """Train the configured agent against ``env``'s proxy reward; evaluate every ``eval_every`` iterations."""
    from hydra.utils import instantiate

    from prefgym.evaluate import sample_metrics

    agent = instantiate(cfg.agent, policy=policy)
    out: dict[str, list[float]] = {"iteration": [], "kl": [], "proxy": [], "gold": [], "train_kl": []}
    every, iterations = int(cfg.ppo.eval_every), int(cfg.ppo.iterations)
    train_kl = 0.0
    for iteration in range(iterations + 1):
        if iteration % every == 0 or iteration == iterations:
            m = sample_metrics(agent, eval_env, base, int(cfg.eval.num_samples), int(cfg.eval.seed))["metrics"]
            for key, value in (("iteration", iteration), ("kl", m["kl_to_base"]), ("proxy", m["score"]),
                               ("gold", m["gold_score"]), ("train_kl", train_kl)):
                out[key].append(float(value))
            log(f"ppo it {iteration:3d}: KL {m['kl_to_base']:.2f}  proxy {m['score']:+.3f}  gold {m['gold_score']:+.4f}")
        if iteration < iterations:
            _, metrics = agent.train_step(env, iteration)
            train_kl = float(metrics.get("kl/ref", 0.0))
    return out


def plot_overopt(result: dict[str, Any], path: str | Path) -> None:
    """Proxy and gold score against sqrt(KL to the base policy), best-of-n and PPO side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prefgym.utils.io import atomic_open

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, style in (("best_of_n", "o--"), ("ppo", "s-")):
        curve = result.get(name)
        if not curve:
            continue
        # Gao et al. plot against sqrt(KL): best-of-n and RL curves become comparable in shape
        distance = np.sqrt(np.clip(np.asarray(curve["kl"]), 0.0, None))
        order = np.argsort(distance)
        for ax, key in zip(axes, ("proxy", "gold")):
            ax.plot(distance[order], np.asarray(curve[key])[order], style, label=name.replace("_", "-"))
    label = "sqrt KL(policy || base)  [sqrt nats]"
    axes[0].set(title=f"proxy: {result['proxy_name']}", xlabel=label, ylabel="proxy score")
    axes[1].set(title=f"gold: {result['gold_name']}", xlabel=label, ylabel="gold score")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("reward over-optimisation (Gao et al. 2022)")
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def _envs(cfg: Any) -> tuple[Any, Any]:
    """(train env, eval env): the proxy as reward, the env's own scorer as gold."""
    import gymnasium as gym

    import prefgym  # noqa: F401  (registers the envs)
    from prefgym.rollout import make_rollout_env

    gold = gym.spec(cfg.env_id).kwargs["preference"]
    proxy = {"_target_": "prefgym.reward.LearnedRewardModel", "path": str(cfg.reward_model)}
    kwargs = {"preference": proxy, "gold_preference": gold, "max_new_tokens": int(cfg.max_new_tokens)}
    train_env = make_rollout_env(cfg.env_id, num_envs=int(cfg.agent.config.batch_size), **kwargs)
    eval_env = make_rollout_env(cfg.env_id, num_envs=int(cfg.eval.batch_size), split="eval",
                                prompt_order="sequential", **kwargs)
    return train_env, eval_env


def run_overopt(cfg: Any) -> dict[str, Any]:
    """The whole measurement of ``conf/reward/overopt.yaml``; writes JSON and PNG into ``run_dir``."""
    from hydra.utils import instantiate

    from prefgym.utils.io import atomic_write_json
    from prefgym.utils.torch_threads import configure_threads

    configure_threads(cfg.num_threads)
    import torch

    torch.manual_seed(cfg.seed)
    run_dir = Path(cfg.run_dir)
    start = time.time()
    train_env, eval_env = _envs(cfg)
    base = instantiate(cfg.policy).eval()
    result: dict[str, Any] = {"env_id": cfg.env_id, "reward_model": str(cfg.reward_model),
                              "proxy_name": f"learned {Path(str(cfg.reward_model)).name}",
                              "gold_name": cfg.env_id.split("/")[-1].split("-")[0]}
    if cfg.best_of_n.enabled:
        prompts = list(eval_env.unwrapped.prompt_split[:int(cfg.best_of_n.num_prompts)])
        proxy, gold = sample_scores(base, eval_env, prompts, int(max(cfg.best_of_n.ns)), int(cfg.eval.seed))
        result["best_of_n"] = best_of_n_curve(proxy, gold, list(cfg.best_of_n.ns))
        for n, p, g in zip(*(result["best_of_n"][k] for k in ("n", "proxy", "gold"))):
            print(f"best-of-{n:<3d}: proxy {p:+.3f}  gold {g:+.4f}")
    if cfg.ppo.enabled:
        policy = instantiate(cfg.policy)
        result["ppo"] = ppo_curve(cfg, policy, base, train_env, eval_env)
    result["wall_time_s"] = round(time.time() - start, 1)
    atomic_write_json(run_dir / "overopt.json", result)
    plot_overopt(result, run_dir / "overopt.png")
    print(json.dumps({k: v for k, v in result.items() if k in ("best_of_n", "ppo", "wall_time_s")}))
    print(f"wrote {run_dir / 'overopt.json'} and {run_dir / 'overopt.png'}")
    return result
