"""Golden values of the DPO loss on hand-made log-probs."""

import math

import pytest
import torch

from mmreason.dpo.loss import PairLogprobs, dpo_loss


def test_sigmoid_loss_golden_values():
    # Pair 0: log pi(chosen) - log pi_ref(chosen) = -1 - (-2) = 1, rejected: -3 - (-2) = -1.
    #   With beta 0.5 the rewards are 0.5 and -0.5, the margin 0.5 * (1 - (-1)) = 1,
    #   so loss = -log sigmoid(1) = log(1 + e^-1) = 0.313261687518...
    # Pair 1: the policy is the reference (both ratios 0): margin 0, loss = -log(1/2) = log 2.
    logps = PairLogprobs(chosen=torch.tensor([-1.0, -4.0]), rejected=torch.tensor([-3.0, -5.0]),
                         ref_chosen=torch.tensor([-2.0, -4.0]), ref_rejected=torch.tensor([-2.0, -5.0]))
    terms = dpo_loss(logps, beta=0.5)
    assert terms.losses.tolist() == pytest.approx([math.log(1 + math.exp(-1)), math.log(2)], abs=1e-6)
    assert terms.losses[0].item() == pytest.approx(0.3132616875, abs=1e-9)
    assert terms.chosen_rewards.tolist() == pytest.approx([0.5, 0.0])
    assert terms.rejected_rewards.tolist() == pytest.approx([-0.5, 0.0])


def test_gradient_pushes_chosen_up_and_rejected_down():
    # d/dx -log sigmoid(beta (x - y)) = -beta * sigmoid(-margin): at margin 0, -beta / 2 for chosen, +beta / 2 rejected.
    chosen = torch.tensor([-4.0], requires_grad=True)
    rejected = torch.tensor([-5.0], requires_grad=True)
    terms = dpo_loss(PairLogprobs(chosen, rejected, torch.tensor([-4.0]), torch.tensor([-5.0])), beta=0.2)
    terms.losses.sum().backward()
    assert chosen.grad.item() == pytest.approx(-0.1)
    assert rejected.grad.item() == pytest.approx(0.1)


def test_unknown_loss_type_and_bad_shapes_fail():
    one = torch.zeros(1)
    with pytest.raises(ValueError, match="sigmoid"):
        dpo_loss(PairLogprobs(one, one, one, one), beta=0.1, loss_type="hinge")
    with pytest.raises(ValueError, match=r"\[P\]"):
        dpo_loss(PairLogprobs(torch.zeros(2, 1), one, one, one), beta=0.1)
