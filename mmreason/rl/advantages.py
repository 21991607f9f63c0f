"""Group-relative advantage estimators, registered by name (`algo.advantage`; the `algo.name` preset fills it).

Every estimator takes the rewards of one RL step laid out as ``[B, G]``
(B prompts, G sampled responses per prompt) and returns advantages of the same
shape; the group dimension is always dim 1. None of them needs a value network:
the group's own rewards are the baseline.

============  =======================================  =====================================
name          advantage                                used by
============  =======================================  =====================================
group_norm    (r - mean_g r) / (std_g r + eps)         DeepSeekMath (GRPO), DAPO (same
                                                       estimator; its changes are in the
                                                       loss and the sampling)
group_center  r - mean_g r                             Dr. GRPO (dividing by std biases
                                                       updates towards too-easy/too-hard
                                                       groups); Kimi k1.5 (its surrogate
                                                       regresses r - mean(r) onto
                                                       tau * log(pi/pi_ref))
============  =======================================  =====================================

Choices made here:

- ``std_g`` is the unbiased (Bessel-corrected, divide by G - 1) standard
  deviation, as `torch.std` computes it by default and as TRL and verl use.
  With rewards in {0, 1} it makes the advantages a little smaller than the
  population std would; the loss is otherwise unchanged.
- A group whose rewards are all equal gets advantage exactly 0 (not a tiny
  float residue from ``r - mean``), so it contributes exactly zero policy
  gradient; DAPO's dynamic sampling drops such groups altogether
  (`informative_groups`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
from torch import Tensor

from mmreason.rl.presets import lookup, resolve_algo

if TYPE_CHECKING:
    from mmreason.config import AlgoConfig

STD_EPS = 1e-6
"""Added to the group std before dividing, so a near-constant group cannot blow up."""


def _check_rewards(rewards: Tensor) -> None:
    if not isinstance(rewards, Tensor):
        raise TypeError(f"rewards: expected a torch.Tensor of shape [B, G], got {type(rewards).__name__}")
    if rewards.dim() != 2:
        raise ValueError(f"rewards: expected shape [B, G] (prompts x responses per prompt), got {tuple(rewards.shape)}")
    if rewards.shape[1] < 2:
        raise ValueError(f"rewards: group-relative advantages need G >= 2 responses per prompt, got shape {tuple(rewards.shape)}")
    if not torch.isfinite(rewards).all():
        raise ValueError("rewards: contain NaN or infinite values")


def _constant_groups(rewards: Tensor) -> Tensor:
    """[B, G] -> [B, 1] bool: True where every reward in the group is the same."""
    return (rewards.amax(dim=1, keepdim=True) == rewards.amin(dim=1, keepdim=True))


def centered_rewards(rewards: Tensor) -> Tensor:
    """[B, G] -> [B, G]: r - mean over the group; exactly 0 for a group of equal rewards."""
    _check_rewards(rewards)
    rewards = rewards.float()
    centered = rewards - rewards.mean(dim=1, keepdim=True)
    return centered.masked_fill(_constant_groups(rewards), 0.0)


def normalized_rewards(rewards: Tensor) -> Tensor:
    """[B, G] -> [B, G]: (r - mean) / (unbiased std + STD_EPS) over each group; 0 for equal rewards."""
    centered = centered_rewards(rewards)
    std = rewards.float().std(dim=1, keepdim=True)  # unbiased (divides by G - 1)
    return centered / (std + STD_EPS)


ADVANTAGE_ESTIMATORS: dict[str, Callable[[Tensor], Tensor]] = {
    "group_norm": normalized_rewards,
    "group_center": centered_rewards,
}


def compute_advantages(rewards: Tensor, cfg: AlgoConfig) -> Tensor:
    """Rewards [B, G] -> advantages [B, G] with the estimator `cfg.advantage` (or its preset's).

    Raises ValueError listing the valid names for an unknown preset or estimator.
    """
    return lookup(ADVANTAGE_ESTIMATORS, resolve_algo(cfg).advantage, "algo.advantage")(rewards)


def informative_groups(accuracy: Tensor) -> Tensor:
    """Accuracy [B, G] -> [B] bool: False for groups that are all right or all wrong.

    DAPO's dynamic sampling keeps only groups with some spread: a zero-variance
    group has zero advantage under every estimator here, so it only dilutes the
    batch (and, with token-mean losses, the gradient).
    """
    if isinstance(accuracy, Tensor):
        accuracy = accuracy.float()  # bool accuracy: amax/amin need a numeric dtype
    _check_rewards(accuracy)
    return ~_constant_groups(accuracy).squeeze(1)
