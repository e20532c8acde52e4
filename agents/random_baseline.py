"""The random baseline: every token drawn uniformly from the vocabulary (no training).

It gives the floor of every metric: the score of noise, the perplexity of a uniform model
(the vocabulary size) and its KL to the base policy. The policy is a tiny module with the
causal-LM interface (``forward(...).logits``), so the rollout and the evaluation treat it
exactly like a transformer.

Example:
    >>> import torch
    >>> from agents.random_baseline import UniformPolicy
    >>> UniformPolicy(5)(input_ids=torch.zeros(2, 3, dtype=torch.long)).logits.shape
    torch.Size([2, 3, 5])
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import torch

from agents import functional as AF


@dataclasses.dataclass
class RandomConfig:
    """Random-baseline settings."""

    batch_size: int = 64  # completions per iteration
    seed: int = 0
    device: str = "auto"


class UniformPolicy(torch.nn.Module):
    """A "language model" whose next-token distribution is uniform over ``vocab_size`` tokens."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.config = SimpleNamespace(vocab_size=vocab_size)
        # A zero LM head, so hooks on the output embeddings (value heads) see a forward like a real LM's.
        self.lm_head = torch.nn.Linear(1, vocab_size, bias=False)
        torch.nn.init.zeros_(self.lm_head.weight)
        self.lm_head.requires_grad_(False)  # nothing to learn

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.lm_head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, use_cache: bool = False, logits_to_keep: int = 0,
                **kwargs: Any) -> SimpleNamespace:
        width = input_ids.shape[1] if not logits_to_keep else min(logits_to_keep, input_ids.shape[1])
        hidden = torch.zeros(input_ids.shape[0], width, 1, device=self.lm_head.weight.device)  # (B, T, 1)
        return SimpleNamespace(logits=self.lm_head(hidden), cache=None, past_key_values=None)


class RandomAgent:
    """Uniformly random tokens; ``policy`` replaces the base model (whose vocabulary size it takes).

    Example:
        >>> from prefgym.models import build_policy
        >>> from prefgym.rollout import make_rollout_env
        >>> env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=4)
        >>> agent = RandomAgent(RandomConfig(batch_size=4),
        ...                     build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2))
        >>> agent.act(env, seed=0).tokens.shape[0]
        4
    """

    def __init__(self, config: RandomConfig, policy: torch.nn.Module | None = None, vocab_size: int | None = None):
        if vocab_size is None:
            if policy is None:
                raise ValueError("RandomAgent needs a policy (for its vocabulary size) or vocab_size")
            vocab_size = int(policy.config.vocab_size)
        self.config = config
        self.batch_size = config.batch_size
        self.device = AF.resolve_device(config.device)
        self.policy = UniformPolicy(vocab_size).to(self.device).eval()
        self.optimizer = None

    def act(self, env: Any, *, prompts: list[str] | None = None, seed: int | None = None):
        """Sample completions token by token from the uniform distribution."""
        from prefgym.rollout import generate_rollout

        return generate_rollout(self.policy, env, temperature=1.0, prompts=prompts, seed=seed)

    def learn(self, env: Any, iterations: int, callback: Any = None) -> "RandomAgent":
        from prefgym.agent import learn

        return learn(self, env, iterations, callback=callback)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.policy}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def save(self, path: str) -> None:
        from prefgym.checkpoint import save_agent

        save_agent(self, path)

    def load(self, path: str) -> None:
        from prefgym.checkpoint import load_agent

        load_agent(self, path)

    def train_step(self, env: Any, iteration: int) -> tuple[Any, dict[str, float]]:
        """No update: sample once and report."""
        from prefgym.agent import iteration_seed, rollout_metrics

        rollout = self.act(env, seed=iteration_seed(self.config.seed, iteration))
        return rollout, rollout_metrics(rollout)
