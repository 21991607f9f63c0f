"""Policy losses for RL with verifiable rewards: a per-token (or per-sequence) loss and, apart from it, how the
per-token losses are averaged into one number.

    loss, stats = compute_policy_loss(batch: PolicyBatch, counts: BatchCounts, cfg: AlgoConfig, max_new_tokens)

`cfg.loss` picks the loss in `POLICY_LOSSES` and `cfg.loss_agg` the aggregation in `LOSS_AGGREGATIONS`;
`cfg.name` is a preset that fills whichever of the two is unset (`mmreason/rl/presets.py`).

==============  ===================================================  ===========================================
loss            term                                                 notes
==============  ===================================================  ===========================================
ppo_clip        -min(r_t A, clip(r_t, 1-eps_low, 1+eps_high) A)      GRPO / DAPO (clip-higher: eps_high > eps_low)
                + beta * k3 KL to the reference, per token           / Dr. GRPO; beta = 0 adds no KL
mirror_descent  (A_i - tau * sum_t log(pi/pi_ref))^2 per sequence    Kimi k1.5: no ratio clipping; pi_ref is the
                                                                     policy at the start of the iteration
==============  ===================================================  ===========================================

=======================  ===============================================  ========================================
loss_agg                 aggregation of per-token losses l[b, t]           used by
=======================  ===============================================  ========================================
token_mean               sum over every token / tokens in the batch        DAPO: every token weighs the same, so long
                                                                           wrong answers are not under-penalised
seq_mean_token_mean      mean over each sequence's tokens, then mean       GRPO (long answers weigh less per token)
                         over sequences
seq_mean_token_sum_norm  token sum per sequence / a constant               Dr. GRPO: no length bias (the constant is
                         (length_normalizer or max_new_tokens), then       length_normalizer or max_new_tokens)
                         mean over sequences
=======================  ===============================================  ========================================

Micro-batches and ranks: every aggregation divides by totals of the WHOLE optimizer
batch (`BatchCounts`), never by the micro-batch's own size, so a micro-batch's
loss is exactly its share of the full-batch loss and the sum of micro-batch
gradients is the full-batch gradient. The caller undoes DeepSpeed's own
averaging over ranks / accumulation steps (multiply by world size x
accumulation steps, or configure DeepSpeed not to average).

Stats are detached scalars describing THIS micro-batch (means over its response
tokens); `stats["loss"]` is this micro-batch's share, so summing it over
micro-batches and ranks gives the full-batch loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NamedTuple, Optional

import torch
from torch import Tensor

from mmreason.rl.presets import lookup, resolve_algo

if TYPE_CHECKING:
    from mmreason.config import AlgoConfig

MAX_LOG_RATIO = 20.0
"""Log-ratios are clamped to +-20 before exp: e^20 is already far past any clip range,
and a finite ratio keeps 0 * inf from turning a zero-advantage token into NaN."""


class PolicyBatch(NamedTuple):
    """One micro-batch of scored responses, as the loss sees it (b sequences, L response tokens)."""

    logprobs: Tensor
    """[b, L] current policy's log-probs of the response tokens (carries the gradient)."""
    old_logprobs: Tensor
    """[b, L] rollout policy's log-probs of the same tokens (no gradient)."""
    ref_logprobs: Optional[Tensor]
    """[b, L] or None: frozen reference (GRPO/DAPO KL); for k15 the policy at the start of the iteration."""
    advantages: Tensor
    """[b] one advantage per sequence (broadcast over its tokens)."""
    response_mask: Tensor
    """[b, L] 1 for response tokens including EOS, 0 for padding (bool or 0/1 numbers)."""


class BatchCounts(NamedTuple):
    """Totals over the whole optimizer batch: all ranks, all micro-batches."""

    num_sequences: int
    """Responses in the optimizer batch (prompts x group size, after any filtering)."""
    num_tokens: int
    """Response tokens (response_mask == 1) in the optimizer batch."""




# ---- masked reductions ------------------------------------------------------


def masked_sum(values: Tensor, mask: Tensor, dim: Optional[int] = None) -> Tensor:
    """Sum of `values` where `mask` is set (over `dim`, or everything when None).

    Uses `torch.where`, not multiplication, so NaN/inf at padded positions
    cannot leak into the result.
    """
    kept = torch.where(mask.bool(), values, torch.zeros((), dtype=values.dtype, device=values.device))
    return kept.sum() if dim is None else kept.sum(dim=dim)


def masked_mean(values: Tensor, mask: Tensor, dim: Optional[int] = None) -> Tensor:
    """Mean of `values` where `mask` is set; 0 where nothing is set (instead of NaN)."""
    count = mask.bool().sum() if dim is None else mask.bool().sum(dim=dim)
    return masked_sum(values, mask, dim) / count.clamp(min=1).to(values.dtype)


# ---- shared pieces ------------------------------------------------------------


def _check_inputs(batch: PolicyBatch, counts: BatchCounts, loss_name: str) -> None:
    def fail(what: str) -> None:
        raise ValueError(f"{loss_name} loss: {what}")

    shape = tuple(batch.logprobs.shape)
    if len(shape) != 2:
        fail(f"logprobs: expected shape [b, L], got {shape}")
    for name in ("old_logprobs", "ref_logprobs", "response_mask"):
        value = getattr(batch, name)
        if value is not None and tuple(value.shape) != shape:
            fail(f"{name}: expected shape {shape} like logprobs, got {tuple(value.shape)}")
    if tuple(batch.advantages.shape) != (shape[0],):
        fail(f"advantages: expected shape ({shape[0]},) (one per sequence), got {tuple(batch.advantages.shape)}")
    if counts.num_sequences <= 0 or counts.num_tokens <= 0:
        fail(f"BatchCounts must be positive totals of the whole optimizer batch, got {counts}")
    if counts.num_sequences < shape[0]:
        fail(f"BatchCounts.num_sequences={counts.num_sequences} is smaller than this micro-batch ({shape[0]} sequences); "
             "it must count the whole optimizer batch over all ranks")


def _masked_inputs(batch: PolicyBatch) -> tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
    """(mask, logp, old_logp, ref_logp) with padding zeroed, so no NaN/inf from padding reaches exp or backward."""
    mask = batch.response_mask.bool()
    zero = torch.zeros((), dtype=batch.logprobs.dtype, device=batch.logprobs.device)
    logp = torch.where(mask, batch.logprobs, zero)
    old = torch.where(mask, batch.old_logprobs.detach(), zero)
    ref = None if batch.ref_logprobs is None else torch.where(mask, batch.ref_logprobs.detach(), zero)
    return mask, logp, old, ref


def k3_kl(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(pi || pi_ref): e^(ref - logp) - (ref - logp) - 1 (>= 0, 0 when equal)."""
    delta = (ref_logprobs - logprobs).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    return torch.exp(delta) - delta - 1.0


class ClippedTerm(NamedTuple):
    per_token_loss: Tensor
    """[b, L] -min(r A, clip(r) A)."""
    ratio: Tensor
    """[b, L] pi / pi_old."""
    clipped_low: Tensor
    """[b, L] bool: A < 0 and r < 1 - eps_low (the clip removes this token's gradient)."""
    clipped_high: Tensor
    """[b, L] bool: A > 0 and r > 1 + eps_high."""


def clipped_surrogate(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, eps_low: float, eps_high: float) -> ClippedTerm:
    """PPO's clipped objective per token, as a loss: -min(r A, clip(r, 1-eps_low, 1+eps_high) A).

    logprobs, old_logprobs [b, L]; advantages [b] (broadcast over tokens).
    """
    ratio = torch.exp((logprobs - old_logprobs).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO))
    adv = advantages.detach().to(ratio.dtype).unsqueeze(1)  # [b, 1]
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high) * adv
    return ClippedTerm(
        per_token_loss=-torch.minimum(unclipped, clipped),
        ratio=ratio,
        clipped_low=(adv < 0) & (ratio < 1.0 - eps_low),
        clipped_high=(adv > 0) & (ratio > 1.0 + eps_high),
    )


def _token_stats(mask: Tensor, ratio: Tensor, clipped_low: Tensor, clipped_high: Tensor, kl: Optional[Tensor]) -> dict[str, Tensor]:
    with torch.no_grad():
        low = masked_mean(clipped_low.float(), mask)
        high = masked_mean(clipped_high.float(), mask)
        return {
            "clip_fraction": low + high,  # the two cannot both hold for one token
            "clip_low_fraction": low,
            "clip_high_fraction": high,
            "ratio_mean": masked_mean(ratio.detach().float(), mask),
            "kl": masked_mean(kl.detach().float(), mask) if kl is not None else torch.zeros((), device=mask.device),
        }


# ---- the losses ----------------------------------------------------------------


class LossTerms(NamedTuple):
    """What a policy loss hands to the aggregation: exactly one of the two is set."""

    per_token: Optional[Tensor]
    """[b, L] a loss per response token (padding is masked out by the aggregation)."""
    per_sequence: Optional[Tensor]
    """[b] a loss per sequence (averaged over the batch's sequences, no token aggregation)."""
    stats: dict[str, Tensor]


LossFn = Callable[[PolicyBatch, "AlgoConfig"], LossTerms]


def ppo_clip_loss(batch: PolicyBatch, cfg: AlgoConfig) -> LossTerms:
    """Clipped surrogate per token (+ beta * k3 KL to the reference when beta > 0; the KL is reported whenever a
    reference is given)."""
    mask, logp, old, ref = _masked_inputs(batch)
    term = clipped_surrogate(logp, old, batch.advantages, cfg.clip_eps_low, cfg.clip_eps_high)
    per_token = term.per_token_loss
    kl = k3_kl(logp, ref) if ref is not None else None
    if cfg.beta > 0:
        if kl is None:
            raise ValueError(f"{cfg.name} loss: algo.beta={cfg.beta} > 0 needs ref_logprobs (the reference model's log-probs), got None")
        per_token = per_token + cfg.beta * kl
    return LossTerms(per_token, None, _token_stats(mask, term.ratio, term.clipped_low, term.clipped_high, kl))


def mirror_descent_loss(batch: PolicyBatch, cfg: AlgoConfig) -> LossTerms:
    """Kimi k1.5 mirror-descent surrogate per sequence: (A_i - tau * s_i)^2.

    s_i = sum_t (log pi(y_t) - log pi_ref(y_t)) over the response tokens is the
    sequence log-ratio against pi_ref, the policy at the start of this
    mirror-descent iteration; A_i = r_i - mean(r) comes in `batch.advantages`.

    On the 1/2 factor: the k1.5 report writes the surrogate as this square
    (no 1/2) and its update as A grad(log pi) - tau/2 grad((log pi/pi_ref)^2),
    which is -1/(2 tau) times the gradient of the square. We keep the square as
    written, so the gradient is 2 tau times the report's update direction: at
    pi = pi_ref the loss is A_i^2 and d loss_i / d s_i = -2 tau A_i. The
    learning rate absorbs the constant.
    """
    if batch.ref_logprobs is None:
        raise ValueError(f"{cfg.name} loss: needs ref_logprobs (the policy's log-probs at the start of the iteration), got None")
    mask, logp, old, ref = _masked_inputs(batch)
    assert ref is not None
    seq_log_ratio = masked_sum(logp - ref, mask, dim=1)  # [b] s_i
    adv = batch.advantages.detach().to(seq_log_ratio.dtype)
    ratio = torch.exp((logp - old).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO))
    no_clip = torch.zeros_like(mask)
    return LossTerms(None, (adv - cfg.tau * seq_log_ratio) ** 2, _token_stats(mask, ratio, no_clip, no_clip, k3_kl(logp, ref)))


POLICY_LOSSES: dict[str, LossFn] = {
    "ppo_clip": ppo_clip_loss,
    "mirror_descent": mirror_descent_loss,
}


# ---- aggregations: per-token losses [b, L] -> this micro-batch's share of the step's loss ----------------


def token_mean(per_token: Tensor, mask: Tensor, counts: BatchCounts, sum_normalizer: int) -> Tensor:
    """Every response token of the optimizer batch weighs the same: sum / all tokens (DAPO)."""
    return masked_sum(per_token, mask) / counts.num_tokens


def seq_mean_token_mean(per_token: Tensor, mask: Tensor, counts: BatchCounts, sum_normalizer: int) -> Tensor:
    """Mean over each sequence's tokens, then over all sequences (GRPO); an empty sequence contributes 0."""
    return masked_mean(per_token, mask, dim=1).sum() / counts.num_sequences


def seq_mean_token_sum_norm(per_token: Tensor, mask: Tensor, counts: BatchCounts, sum_normalizer: int) -> Tensor:
    """Token sum per sequence / a constant, then mean over sequences (Dr. GRPO: no length bias)."""
    if sum_normalizer <= 0:
        raise ValueError(f"seq_mean_token_sum_norm: the length normaliser (algo.length_normalizer or max_new_tokens) "
                         f"must be > 0, got {sum_normalizer}")
    return (masked_sum(per_token, mask, dim=1) / sum_normalizer).sum() / counts.num_sequences


AggregationFn = Callable[[Tensor, Tensor, BatchCounts, int], Tensor]
LOSS_AGGREGATIONS: dict[str, AggregationFn] = {
    "token_mean": token_mean,
    "seq_mean_token_mean": seq_mean_token_mean,
    "seq_mean_token_sum_norm": seq_mean_token_sum_norm,
}


def compute_policy_loss(batch: PolicyBatch, counts: BatchCounts, cfg: AlgoConfig, max_new_tokens: int) -> tuple[Tensor, dict[str, Tensor]]:
    """This micro-batch's share of the step's loss under `cfg` (its preset filling unset keys), and its stats.

    Raises ValueError listing the valid names for an unknown preset, loss or aggregation.
    """
    algo = resolve_algo(cfg)
    _check_inputs(batch, counts, algo.name)
    terms = lookup(POLICY_LOSSES, algo.loss, "algo.loss")(batch, algo)
    if terms.per_sequence is not None:
        loss = terms.per_sequence.sum() / counts.num_sequences
    else:
        aggregate = lookup(LOSS_AGGREGATIONS, algo.loss_agg, "algo.loss_agg")
        normalizer = algo.length_normalizer if algo.length_normalizer is not None else max_new_tokens
        loss = aggregate(terms.per_token, batch.response_mask.bool(), counts, normalizer)
    return loss, {**terms.stats, "loss": loss.detach()}
