"""DPO losses as small pure functions behind a name registry (dpo.loss_type).

Rafailov et al. 2023: with pi the policy and pi_ref the reference, a reply's implicit reward is
r(y) = beta * (log pi(y|x) - log pi_ref(y|x)), summed over its tokens; the sigmoid loss of a pair is
-log sigmoid(r(chosen) - r(rejected)). Imports only torch.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F


class PairLogprobs(NamedTuple):
    """Summed reply log-probs of P pairs, each [P]."""

    chosen: torch.Tensor  # [P] log pi(chosen | x), carries the gradient
    rejected: torch.Tensor  # [P] log pi(rejected | x), carries the gradient
    ref_chosen: torch.Tensor  # [P] log pi_ref(chosen | x), no gradient
    ref_rejected: torch.Tensor  # [P] log pi_ref(rejected | x), no gradient


class DPOTerms(NamedTuple):
    losses: torch.Tensor  # [P] per-pair loss
    chosen_rewards: torch.Tensor  # [P] beta * (log pi - log pi_ref) of the chosen reply, detached
    rejected_rewards: torch.Tensor  # [P] the same for the rejected reply, detached


def sigmoid_loss(margin: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(margin), elementwise (logsigmoid is stable for large |margin|)."""
    return -F.logsigmoid(margin)


DPO_LOSSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"sigmoid": sigmoid_loss}


def dpo_loss(logps: PairLogprobs, beta: float, loss_type: str = "sigmoid") -> DPOTerms:
    """Per-pair DPO loss and implicit rewards: [P] x 4 -> DPOTerms of [P] each."""
    if loss_type not in DPO_LOSSES:
        raise ValueError(f"dpo.loss_type {loss_type!r} is unknown; expected one of {sorted(DPO_LOSSES)}")
    shapes = {tuple(t.shape) for t in logps}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"dpo_loss: expected four [P] tensors, got shapes {[tuple(t.shape) for t in logps]}")
    chosen_ratio = logps.chosen - logps.ref_chosen  # [P]
    rejected_ratio = logps.rejected - logps.ref_rejected  # [P]
    losses = DPO_LOSSES[loss_type](beta * (chosen_ratio - rejected_ratio))
    return DPOTerms(losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach())
