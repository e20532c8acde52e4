"""DPO and IPO: learning a policy straight from preference pairs, with no reward model and no RL.

* DPO (Rafailov et al. 2023): with ``h = [log pi(y_w) - log ref(y_w)] - [log pi(y_l) - log ref(y_l)]``
  (sequence log-probs of the completion given the prompt), minimise
  ``-(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)`` (``eps`` = label smoothing,
  the conservative DPO of Mitchell 2023 for noisy labels; 0 is plain DPO).
* IPO (Azar et al. 2023): minimise ``(h - 1 / (2 tau))^2`` (``tau`` = ``beta``); it regresses the
  log-ratio gap to a finite target instead of pushing it to infinity, so it does not overfit
  deterministic or noisy preferences the way DPO can.

Log-probs are sums over completion tokens (the papers' definition); ``average_logprobs=True``
uses per-token means instead (TRL's IPO). Ties carry no preference for either loss and are
skipped (counted in ``charts/skipped_ties``); K-wise rankings contribute all their ordered pairs.

The agent follows prefgym's agent protocol (``act`` / ``train_step`` / ``learn`` / ``save`` /
``load``): one ``train_step`` is one optimiser step on a minibatch of pairs, so the same
training loop, checkpoints and evaluation as the RL agents apply. Its data is a comparisons
source (:func:`prefgym.reward.load_comparisons`: JSONL, HF dataset, rows) or comparisons; with
no data it builds its own on the first ``train_step``: ``num_pairs`` pairs of two samples of the
reference policy per env prompt, labelled by a simulated annotator over the env's reward (the
usual "DPO on self-generated, preference-labelled pairs" setup), so ``prefgym train agent=dpo``
works on any env.

Example:
    >>> import torch
    >>> loss, logs = dpo_loss(torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([-1.5]), torch.tensor([-1.5]))
    >>> round(float(loss), 4)  # -log sigmoid(0.1 * 1)
    0.6444
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from agents import functional as AF

LOSS_TYPES = ("dpo", "ipo")


@dataclasses.dataclass
class DPOConfig:
    """DPO/IPO hyperparameters; defaults follow the DPO paper / TRL's DPOConfig."""

    loss_type: str = "dpo"  # "dpo" (sigmoid) or "ipo" (squared)
    beta: float = 0.1  # KL strength: DPO's beta, IPO's tau
    label_smoothing: float = 0.0  # DPO only: assumed label-flip rate (conservative DPO)
    average_logprobs: bool = False  # per-token mean log-probs instead of sums
    lr: float = 5e-6  # Adam learning rate (tiny models tolerate ~1e-4)
    batch_size: int = 16  # pairs per optimiser step
    max_grad_norm: float = 1.0  # gradient clipping (<= 0 disables)
    max_prompt_tokens: int = 64  # prompts are left-truncated to this many tokens
    max_completion_tokens: int = 64  # completions are right-truncated to this many tokens
    append_eos: bool = True  # end every completion with EOS (as TRL does), so "stop here" is learnable
    data: Any = None  # comparisons source (path, HF dataset, rows); None: sample pairs on the env (below)
    num_pairs: int = 512  # data=None: pairs of two reference-policy samples per env prompt ...
    annotator_temperature: float = 0.0  # ... labelled by a Boltzmann annotator over the env's reward
    flip_prob: float = 0.0  # ... with this label-flip rate
    min_completion_chars: int = 0  # ... keeping pairs whose completions both have this many non-blank chars
    sample_rollouts: bool = True  # train_step also samples one env batch (for training curves)
    tokenizer: str = "prefgym/bpe-8k"  # the policy's tokenizer (name or path)
    temperature: float = 1.0  # sampling temperature of act()
    seed: int = 0  # seeds the minibatch order
    device: str = "auto"  # "auto", "cuda" or "cpu"
    mixed_precision: bool = False  # bf16 autocast on CUDA


def _log_ratio_gap(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
                   ref_rejected: torch.Tensor) -> torch.Tensor:
    return (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)  # (B,)


def _logs(h: torch.Tensor, policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
          ref_rejected: torch.Tensor, beta: float, loss: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        chosen, rejected = beta * (policy_chosen - ref_chosen), beta * (policy_rejected - ref_rejected)
        return {"losses/total": float(loss), "rewards/chosen": float(chosen.mean()),
                "rewards/rejected": float(rejected.mean()), "rewards/margin": float((chosen - rejected).mean()),
                "rewards/accuracy": float((h > 0).float().mean()), "losses/log_ratio_gap": float(h.mean())}


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1, label_smoothing: float = 0.0,
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """DPO loss from sequence log-probs, each (B,); returns the mean loss and ``losses/``/``rewards/`` logs."""
    h = _log_ratio_gap(policy_chosen, policy_rejected, ref_chosen, ref_rejected)  # (B,)
    per_pair = -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
    loss = per_pair.mean()
    return loss, _logs(h, policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, loss)


def ipo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1) -> tuple[torch.Tensor, dict[str, float]]:
    """IPO loss ``(h - 1/(2 beta))^2`` from sequence log-probs, each (B,).

    Example:
        >>> loss, _ = ipo_loss(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]), 0.5)
        >>> float(loss)  # (0 - 1)^2
        1.0
    """
    h = _log_ratio_gap(policy_chosen, policy_rejected, ref_chosen, ref_rejected)  # (B,)
    loss = ((h - 1.0 / (2.0 * beta)) ** 2).mean()
    return loss, _logs(h, policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, loss)


def preference_pairs(comparisons: Sequence[Any]) -> tuple[list[tuple[str, str, str]], int]:
    """(prompt, chosen, rejected) triples from comparisons (K-wise: every ordered pair) and the
    number of ties skipped."""
    pairs, ties = [], 0
    for c in comparisons:
        if c.tie:
            ties += 1
            continue
        for i in range(c.k):
            for j in range(i + 1, c.k):
                pairs.append((c.prompt, c.completions[i], c.completions[j]))
    return pairs, ties


class DPOAgent:
    """A policy trained by DPO or IPO against a frozen reference copy of itself.

    Example:
        >>> from prefgym.models import build_policy
        >>> rows = [{"prompt": "the ", "chosen": "aaa", "rejected": "bbb"}] * 4
        >>> agent = DPOAgent(DPOConfig(batch_size=4, lr=1e-3, data=rows, tokenizer="prefgym/toy-chars"),
        ...                  build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2))
        >>> _, metrics = agent.train_step(None, iteration=0)
        >>> round(metrics["losses/total"], 4)  # log 2 at the start: policy == reference
        0.6931
    """

    def __init__(self, config: DPOConfig, policy: torch.nn.Module, ref_policy: torch.nn.Module | None = None,
                 comparisons: Sequence[Any] | None = None):
        from prefgym.reward.data import load_comparisons
        from prefgym.tokenization import load_tokenizer

        if config.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {config.loss_type!r}")
        if config.beta <= 0 or not 0.0 <= config.label_smoothing < 0.5:
            raise ValueError(f"need beta > 0 and 0 <= label_smoothing < 0.5, got {config.beta}, {config.label_smoothing}")
        self.config = config
        self.batch_size = config.batch_size
        self.device = AF.resolve_device(config.device)
        self.policy = policy.to(self.device)
        self.ref_policy = copy.deepcopy(policy) if ref_policy is None else ref_policy.to(self.device)
        self.ref_policy.eval().requires_grad_(False)
        self.tokenizer = load_tokenizer(config.tokenizer)
        vocab = self.policy.get_input_embeddings().num_embeddings
        if len(self.tokenizer) > vocab:
            raise ValueError(f"tokenizer {config.tokenizer!r} has {len(self.tokenizer)} tokens but the policy embeds "
                             f"{vocab}: DPO data must be tokenized with the policy's own tokenizer")
        if comparisons is None and config.data is not None:
            comparisons = load_comparisons(config.data)
        self.pairs: list[tuple[str, str, str]] = []
        self.skipped_ties = 0
        if comparisons is not None:
            self._set_data(comparisons)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self._encoded: dict[int, dict[str, torch.Tensor]] = {}

    def _set_data(self, comparisons: Sequence[Any]) -> None:
        self.pairs, self.skipped_ties = preference_pairs(comparisons)
        if not self.pairs:
            raise ValueError("the DPO data holds no strict preferences (only ties)")

    def sample_data(self, env: Any) -> None:
        """Build the dataset from ``env``: reference-policy sample pairs, labelled by the env's reward."""
        from prefgym.preferences import BoltzmannAnnotator
        from prefgym.reward.pairs import sample_pairs

        if env is None:
            raise ValueError("DPO needs preference data: set DPOConfig.data (a JSONL path, HF dataset or rows), "
                             "pass comparisons=, or call train_step with an env to sample pairs from")
        c = self.config
        annotator = BoltzmannAnnotator(env.unwrapped.config.preference, temperature=c.annotator_temperature,
                                       flip_prob=c.flip_prob, seed=c.seed)
        comparisons, _ = sample_pairs(self.ref_policy, env, c.num_pairs, annotator, seed=c.seed,
                                      temperature=c.temperature, min_chars=c.min_completion_chars)
        self._set_data(comparisons)

    # -- protocol -------------------------------------------------------------------------
    def act(self, env: Any, *, prompts: list[str] | None = None, seed: int | None = None):
        """Sample one batch of completions from the current policy."""
        from prefgym.rollout import generate_rollout

        self.policy.eval()
        with AF.autocast(self.device, self.config.mixed_precision):
            return generate_rollout(self.policy, env, temperature=self.config.temperature, prompts=prompts, seed=seed)

    def learn(self, env: Any, iterations: int, callback: Any = None) -> "DPOAgent":
        from prefgym.agent import learn

        return learn(self, env, iterations, callback=callback)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.policy}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None

    def save(self, path: str) -> None:
        from prefgym.checkpoint import save_agent

        save_agent(self, path)

    def load(self, path: str) -> None:
        from prefgym.checkpoint import load_agent

        load_agent(self, path)

    # -- training -------------------------------------------------------------------------
    def _batch_rows(self, iteration: int) -> list[int]:
        """Pair indices of minibatch ``iteration``: epochs of a seeded permutation (resumable)."""
        per_epoch = max(1, len(self.pairs) // self.batch_size)
        epoch, step = divmod(iteration, per_epoch)
        order = torch.randperm(len(self.pairs), generator=torch.Generator().manual_seed(self.config.seed * 7919 + epoch))
        return order[step * self.batch_size:(step + 1) * self.batch_size].tolist()

    def encode(self, rows: list[int]) -> dict[str, torch.Tensor]:
        """Left-padded prompts (B, P) and right-padded chosen/rejected completions (B, N), with masks."""
        c, tok = self.config, self.tokenizer
        prompts = [tok(self.pairs[i][0], add_special_tokens=False)["input_ids"][-c.max_prompt_tokens:] for i in rows]
        out: dict[str, torch.Tensor] = {}
        width = max(len(p) for p in prompts)
        out["prompt_ids"] = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts])
        out["prompt_mask"] = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        # Without EOS an empty completion has no tokens, hence no log-prob to raise: DPO could only
        # push the other completion down, and the freed mass drifts to degenerate text.
        eos = [tok.eos_token_id] if c.append_eos and tok.eos_token_id is not None else []
        for side, k in (("chosen", 1), ("rejected", 2)):
            ids = [(tok(self.pairs[i][k], add_special_tokens=False)["input_ids"] + eos)[:c.max_completion_tokens]
                   for i in rows]
            n = max(1, max(len(x) for x in ids))
            out[f"{side}_ids"] = torch.tensor([x + [tok.pad_token_id] * (n - len(x)) for x in ids])
            out[f"{side}_mask"] = torch.tensor([[1] * len(x) + [0] * (n - len(x)) for x in ids]).float()
        return {k: v.to(self.device) for k, v in out.items()}

    def sequence_logprobs(self, model: torch.nn.Module, batch: dict[str, torch.Tensor], side: str) -> torch.Tensor:
        """Sum (or mean) of the completion's token log-probs given the prompt, (B,)."""
        mask = batch[f"{side}_mask"]
        out = AF.token_logprobs(model, batch["prompt_ids"], batch["prompt_mask"], batch[f"{side}_ids"], mask)
        total = out["logprobs"].sum(-1)  # (B,)
        return total / mask.sum(-1).clamp(min=1) if self.config.average_logprobs else total

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The configured loss on one encoded minibatch."""
        c = self.config
        with torch.no_grad():
            ref = [self.sequence_logprobs(self.ref_policy, batch, s) for s in ("chosen", "rejected")]
        pol = [self.sequence_logprobs(self.policy, batch, s) for s in ("chosen", "rejected")]
        if c.loss_type == "ipo":
            return ipo_loss(pol[0], pol[1], ref[0], ref[1], c.beta)
        return dpo_loss(pol[0], pol[1], ref[0], ref[1], c.beta, c.label_smoothing)

    def train_step(self, env: Any, iteration: int) -> tuple[Any, dict[str, float]]:
        """One optimiser step on minibatch ``iteration``; returns ``(rollout, metrics)``.

        The rollout is one env batch sampled after the step (``sample_rollouts``; ``None`` without
        an env), so training curves show the reward and gold score like an RL agent's.
        """
        from prefgym.agent import iteration_seed, rollout_metrics

        c = self.config
        if not self.pairs:
            self.sample_data(env)
        self.policy.train()
        batch = self.encode(self._batch_rows(iteration))
        with AF.autocast(self.device, c.mixed_precision):
            loss, metrics = self.loss(batch)
        AF.check_finite(loss, f"{c.loss_type.upper()} loss", iteration)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        metrics["losses/grad_norm"] = AF.clip_grad(self.policy.parameters(), c.max_grad_norm)
        self.optimizer.step()
        self.policy.eval()
        metrics["charts/epoch"] = iteration * self.batch_size / len(self.pairs)
        metrics["charts/skipped_ties"] = float(self.skipped_ties)
        if env is None or not c.sample_rollouts:
            return None, metrics
        rollout = self.act(env, seed=iteration_seed(c.seed, iteration))
        return rollout, {**rollout_metrics(rollout), **metrics}
