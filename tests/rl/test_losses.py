"""Golden tests for the policy losses; every expected number is derived in the comment above it."""

import math

import pytest
import torch

from mmreason.config import ALGORITHMS, AlgoConfig
from mmreason.rl.advantages import compute_advantages
from mmreason.logprobs import token_entropy
from mmreason.rl.presets import PRESETS
from mmreason.rl.losses import (
    LOSS_AGGREGATIONS,
    POLICY_LOSSES,
    BatchCounts,
    PolicyBatch,
    compute_policy_loss,
    k3_kl,
    masked_mean,
    masked_sum,
)

E_05, E_01, E_M05 = math.exp(0.5), math.exp(0.1), math.exp(-0.5)  # 1.648721, 1.105171, 0.606531


def make_batch(logprobs, old_logprobs, advantages, mask=None, ref_logprobs=None):
    """A PolicyBatch of float64 tensors; `logprobs` is a leaf that records its gradient."""
    logp = torch.tensor(logprobs, dtype=torch.float64, requires_grad=True)
    return PolicyBatch(
        logprobs=logp,
        old_logprobs=torch.tensor(old_logprobs, dtype=torch.float64),
        ref_logprobs=None if ref_logprobs is None else torch.tensor(ref_logprobs, dtype=torch.float64),
        advantages=torch.tensor(advantages, dtype=torch.float64),
        response_mask=torch.ones_like(logp, dtype=torch.bool) if mask is None else torch.tensor(mask, dtype=torch.bool),
    )


def close(actual, expected, tol=1e-6):
    torch.testing.assert_close(torch.as_tensor(actual, dtype=torch.float64),
                               torch.as_tensor(expected, dtype=torch.float64), atol=tol, rtol=0)


def test_every_preset_names_a_registered_loss_and_aggregation():
    assert sorted(PRESETS) == sorted(ALGORITHMS)
    assert {p.loss for p in PRESETS.values()} == set(POLICY_LOSSES)
    assert {p.loss_agg for p in PRESETS.values() if p.loss_agg} == set(LOSS_AGGREGATIONS)


def test_unknown_loss_name_lists_valid_names():
    batch = make_batch([[0.0]], [[0.0]], [1.0])
    with pytest.raises(ValueError, match=r"'grpoo'.*\['dapo', 'dr_grpo', 'grpo', 'k15'\]"):
        compute_policy_loss(batch, BatchCounts(1, 1), AlgoConfig(name="grpoo"), 16)


# ---- the clipped surrogate -------------------------------------------------------


def test_grpo_positive_advantage_clips_only_above():
    # one sequence, log-ratios logp - old = [0.5, 0.1, -0.5], A = 2, eps = 0.2
    batch = make_batch([[-0.5, -0.9, -1.5]], [[-1.0, -1.0, -1.0]], [2.0])
    loss, stats = compute_policy_loss(batch, BatchCounts(1, 3), AlgoConfig(name="grpo"), 16)
    # token 1: ratio e^0.5 = 1.6487 > 1.2, clipped to 1.2      -> -1.2 * 2 = -2.4 (clip active: no gradient)
    # token 2: ratio e^0.1 = 1.1052, inside the range          -> -2 * 1.1052 = -2.2103
    # token 3: ratio e^-0.5 = 0.6065; A > 0 so min(r A, 0.8 A) -> -2 * 0.6065 = -1.2131 (low clip never binds for A > 0)
    # GRPO: token mean of the sequence, then / 1 sequence
    close(loss, (-2.4 - 2 * E_01 - 2 * E_M05) / 3)
    loss.backward()
    # d loss / d logp_t = -A r_t / 3 where unclipped, 0 where the clip is active
    close(batch.logprobs.grad, [[0.0, -2 * E_01 / 3, -2 * E_M05 / 3]])
    close(stats["clip_high_fraction"], 1 / 3)
    close(stats["clip_low_fraction"], 0.0)
    close(stats["clip_fraction"], 1 / 3)
    close(stats["ratio_mean"], (E_05 + E_01 + E_M05) / 3)
    close(stats["kl"], 0.0)
    close(stats["loss"], loss.detach())


def test_grpo_negative_advantage_clips_only_below():
    # same log-ratios [0.5, 0.1, -0.5], A = -1
    batch = make_batch([[-0.5, -0.9, -1.5]], [[-1.0, -1.0, -1.0]], [-1.0])
    loss, stats = compute_policy_loss(batch, BatchCounts(1, 3), AlgoConfig(name="grpo"), 16)
    # token 1: r = 1.6487; min(-1.6487, -1.2) = -1.6487 -> loss +1.6487 (high clip never binds for A < 0)
    # token 2: r = 1.1052 -> loss +1.1052
    # token 3: r = 0.6065 < 0.8; min(-0.6065, -0.8) = -0.8 -> loss +0.8, clipped low (no gradient)
    close(loss, (E_05 + E_01 + 0.8) / 3)
    loss.backward()
    close(batch.logprobs.grad, [[E_05 / 3, E_01 / 3, 0.0]])  # -A r_t / 3 = r_t / 3
    close(stats["clip_low_fraction"], 1 / 3)
    close(stats["clip_high_fraction"], 0.0)
    close(stats["clip_fraction"], 1 / 3)


def test_dapo_clip_higher_is_asymmetric():
    # A = +1 sequence with log-ratios [0.3, 0.2]; A = -1 sequence with log-ratio [-0.25] (plus one padding token)
    batch = make_batch(
        logprobs=[[0.3, 0.2], [-0.25, 0.0]],
        old_logprobs=[[0.0, 0.0], [0.0, 0.0]],
        advantages=[1.0, -1.0],
        mask=[[1, 1], [1, 0]],
    )
    dapo = AlgoConfig(name="dapo", clip_eps_low=0.2, clip_eps_high=0.28)
    loss, stats = compute_policy_loss(batch, BatchCounts(2, 3), dapo, 16)
    # e^0.3 = 1.3499 > 1.28 -> clipped to 1.28 -> -1.28
    # e^0.2 = 1.2214 < 1.28 -> NOT clipped under clip-higher -> -1.2214
    # e^-0.25 = 0.7788 < 0.8, A < 0 -> clipped to 0.8 -> +0.8
    # token mean over the 3 response tokens of the batch
    close(loss, (-1.28 - math.exp(0.2) + 0.8) / 3)
    close(stats["clip_high_fraction"], 1 / 3)
    close(stats["clip_low_fraction"], 1 / 3)
    # the same tokens with a symmetric 0.2 clip: e^0.2 = 1.2214 is clipped to 1.2 as well
    symmetric = AlgoConfig(name="dapo", clip_eps_low=0.2, clip_eps_high=0.2)
    loss_sym, stats_sym = compute_policy_loss(batch, BatchCounts(2, 3), symmetric, 16)
    close(loss_sym, (-1.2 - 1.2 + 0.8) / 3)
    close(stats_sym["clip_high_fraction"], 2 / 3)


# ---- aggregation over tokens and sequences ---------------------------------------


def unequal_lengths_batch():
    """Sequence 0: 1 response token, A = +1; sequence 1: 3 tokens, A = -1; ratios all 1 so each token's loss is -A.

    The padded positions hold NaN: a correct loss never reads them."""
    nan = math.nan
    return make_batch(
        logprobs=[[-1.0, nan, nan], [-1.0, -2.0, -3.0]],
        old_logprobs=[[-1.0, nan, nan], [-1.0, -2.0, -3.0]],
        advantages=[1.0, -1.0],
        mask=[[1, 0, 0], [1, 1, 1]],
    )


def test_sequence_mean_token_mean_and_constant_normaliser_differ_with_unequal_lengths():
    counts = BatchCounts(num_sequences=2, num_tokens=4)
    # GRPO: per-sequence token means -1 and +1, mean over 2 sequences -> 0
    grpo, _ = compute_policy_loss(unequal_lengths_batch(), counts, AlgoConfig(name="grpo"), 4)
    close(grpo, 0.0)
    # DAPO: every token counts once: (-1 + 1 + 1 + 1) / 4 tokens = 0.5
    dapo, _ = compute_policy_loss(unequal_lengths_batch(), counts, AlgoConfig(name="dapo"), 4)
    close(dapo, 0.5)
    # Dr. GRPO, normaliser max_new_tokens = 4: sums -1/4 and 3/4, mean over 2 sequences -> 0.25
    dr, _ = compute_policy_loss(unequal_lengths_batch(), counts, AlgoConfig(name="dr_grpo"), 4)
    close(dr, 0.25)


def test_dr_grpo_uses_the_configured_constant_over_max_new_tokens():
    counts = BatchCounts(num_sequences=2, num_tokens=4)
    batch = unequal_lengths_batch()
    loss, _ = compute_policy_loss(batch, counts, AlgoConfig(name="dr_grpo", length_normalizer=8), 4)
    # sums -1 and 3, each / 8, mean over 2 sequences -> (-0.125 + 0.375) / 2 = 0.125
    close(loss, 0.125)
    loss.backward()
    # d loss / d logp_t = -A r_t / 8 / 2: +-1/16; padding gets exactly 0 (and no NaN leaks from it)
    close(batch.logprobs.grad, [[-1 / 16, 0.0, 0.0], [1 / 16, 1 / 16, 1 / 16]])


@pytest.mark.parametrize("name", ["grpo", "dapo", "dr_grpo", "k15"])
def test_nan_in_padding_never_reaches_loss_or_gradient(name):
    batch = unequal_lengths_batch()
    batch = batch._replace(ref_logprobs=torch.tensor([[-1.2, math.nan, math.nan], [-1.0, -2.5, -3.0]], dtype=torch.float64))
    loss, stats = compute_policy_loss(batch, BatchCounts(2, 4), AlgoConfig(name=name, beta=0.1), 4)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(batch.logprobs.grad).all()
    assert all(torch.isfinite(v) for v in stats.values())
    assert (batch.logprobs.grad[0, 1:] == 0).all()


# ---- KL to the reference ---------------------------------------------------------


def test_k3_kl_values():
    # delta = ref - logp = [0, 0.5, -0.5]; k3 = e^delta - delta - 1 = [0, 0.148721, 0.106531]
    kl = k3_kl(torch.tensor([-1.0, -2.0, -1.0]), torch.tensor([-1.0, -1.5, -1.5]))
    close(kl, [0.0, E_05 - 1.5, E_M05 - 0.5])


def test_grpo_adds_beta_times_k3_kl_inside_the_token_mean():
    # A = 0 so the clipped term is 0 and only the KL is left; ratios are 1 (logp == old)
    batch = make_batch([[-1.0, -2.0, -1.0]], [[-1.0, -2.0, -1.0]], [0.0], ref_logprobs=[[-1.0, -1.5, -1.5]])
    loss, stats = compute_policy_loss(batch, BatchCounts(1, 3), AlgoConfig(name="grpo", beta=0.1), 16)
    mean_k3 = (0.0 + (E_05 - 1.5) + (E_M05 - 0.5)) / 3  # 0.0850841
    close(stats["kl"], mean_k3)
    close(loss, 0.1 * mean_k3)  # 0.00850841
    loss.backward()
    # d k3 / d logp = 1 - e^delta: [0, 1 - e^0.5, 1 - e^-0.5], times beta / 3 tokens
    close(batch.logprobs.grad, [[0.0, 0.1 * (1 - E_05) / 3, 0.1 * (1 - E_M05) / 3]])


def test_kl_is_reported_but_not_added_when_beta_is_zero():
    batch = make_batch([[-1.0, -2.0, -1.0]], [[-1.0, -2.0, -1.0]], [0.0], ref_logprobs=[[-1.0, -1.5, -1.5]])
    loss, stats = compute_policy_loss(batch, BatchCounts(1, 3), AlgoConfig(name="dapo", beta=0.0), 16)
    close(loss, 0.0)
    close(stats["kl"], (E_05 - 1.5 + E_M05 - 0.5) / 3)


def test_beta_without_reference_logprobs_is_an_error():
    batch = make_batch([[-1.0]], [[-1.0]], [1.0])
    with pytest.raises(ValueError, match="beta=0.1.*ref_logprobs"):
        compute_policy_loss(batch, BatchCounts(1, 1), AlgoConfig(name="grpo", beta=0.1), 16)


# ---- zero advantage ------------------------------------------------------------------


@pytest.mark.parametrize("name", ALGORITHMS)
def test_equal_rewards_give_zero_loss_and_zero_gradient(name):
    cfg = AlgoConfig(name=name)
    advantages = compute_advantages(torch.tensor([[1.0, 1.0, 1.0, 1.0]]), cfg).view(-1)
    assert torch.equal(advantages, torch.zeros(4))
    # ratios away from 1 (and away from the clip edges); for k15 the policy equals its reference
    torch.manual_seed(0)
    logp = -torch.rand(4, 5, dtype=torch.float64) - 0.5
    batch = PolicyBatch(
        logprobs=logp.clone().requires_grad_(True),
        old_logprobs=logp + 0.3 * torch.randn(4, 5, dtype=torch.float64),
        ref_logprobs=logp.clone() if name == "k15" else None,
        advantages=advantages.double(),
        response_mask=torch.ones(4, 5, dtype=torch.bool),
    )
    loss, stats = compute_policy_loss(batch, BatchCounts(4, 20), cfg, 5)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(batch.logprobs.grad, torch.zeros(4, 5, dtype=torch.float64))
    assert stats["clip_fraction"].item() == 0.0


# ---- Kimi k1.5 -------------------------------------------------------------------------


def test_k15_at_the_reference_policy_loss_is_a_squared_and_gradient_is_minus_2_tau_a():
    # pi == pi_ref: s = 0, loss = A^2 = 0.5625; d loss / d s = -2 tau A = -2 * 0.1 * 0.75 = -0.15,
    # and d s / d logp_t = 1 for every response token
    batch = make_batch([[-1.0, -2.0]], [[-1.0, -2.0]], [0.75], ref_logprobs=[[-1.0, -2.0]])
    loss, stats = compute_policy_loss(batch, BatchCounts(1, 2), AlgoConfig(name="k15", tau=0.1), 16)
    close(loss, 0.5625)
    loss.backward()
    close(batch.logprobs.grad, [[-0.15, -0.15]])
    close(stats["kl"], 0.0)
    close(stats["clip_fraction"], 0.0)


def test_k15_away_from_the_reference():
    # seq 0 at the reference, A = 0.75: loss 0.5625, d/dlogp_t = -2 * 0.1 * 0.75 = -0.15
    # seq 1 with log-ratios [0.2, 0.3] (s = 0.5), A = -0.75: A - tau s = -0.75 - 0.05 = -0.8 -> loss 0.64,
    #   d/dlogp_t = -2 tau (A - tau s) = -2 * 0.1 * -0.8 = +0.16
    # mean over 2 sequences: loss (0.5625 + 0.64) / 2 = 0.60125, gradients halved; padding gets 0
    batch = make_batch(
        logprobs=[[-1.0, -2.0, 0.0], [-0.8, -1.7, -0.4]],
        old_logprobs=[[-1.0, -2.0, 0.0], [-1.0, -2.0, -0.4]],
        advantages=[0.75, -0.75],
        ref_logprobs=[[-1.0, -2.0, 0.0], [-1.0, -2.0, -0.4]],
        mask=[[1, 1, 0], [1, 1, 1]],
    )
    loss, stats = compute_policy_loss(batch, BatchCounts(2, 5), AlgoConfig(name="k15", tau=0.1), 16)
    close(loss, 0.60125)
    loss.backward()
    close(batch.logprobs.grad, [[-0.075, -0.075, 0.0], [0.08, 0.08, 0.08]])
    # reported kl: mean k3 over the 5 response tokens; only the two tokens with delta = -0.2, -0.3 are nonzero
    close(stats["kl"], (math.exp(-0.2) + 0.2 - 1 + math.exp(-0.3) + 0.3 - 1) / 5)


def test_k15_needs_reference_logprobs():
    batch = make_batch([[-1.0]], [[-1.0]], [1.0])
    with pytest.raises(ValueError, match="k15 loss: needs ref_logprobs"):
        compute_policy_loss(batch, BatchCounts(1, 1), AlgoConfig(name="k15"), 16)


# ---- micro-batch invariance ---------------------------------------------------------------


class TinyTokenPolicy(torch.nn.Module):
    """Embedding -> linear head: token log-probs of targets given inputs, like a one-layer language model."""

    def __init__(self, vocab: int = 11, dim: int = 6):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.head = torch.nn.Linear(dim, vocab)

    def forward(self, inputs, targets):
        log_probs = torch.log_softmax(self.head(self.embed(inputs)), dim=-1)  # [b, L, V]
        return log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [b, L]


@pytest.mark.parametrize("name", ALGORITHMS)
def test_four_micro_batches_give_the_gradient_of_one_full_batch(name):
    torch.manual_seed(1)
    policy = TinyTokenPolicy().double()
    inputs = torch.randint(0, 11, (8, 6))
    targets = torch.randint(0, 11, (8, 6))
    lengths = torch.tensor([1, 6, 3, 2, 5, 6, 4, 2])
    mask = torch.arange(6).unsqueeze(0) < lengths.unsqueeze(1)  # [8, 6]
    with torch.no_grad():
        current = policy(inputs, targets)
    old = current + 0.3 * torch.randn(8, 6, dtype=torch.float64)  # ratios spread over and beyond the clip range
    ref = current + 0.2 * torch.randn(8, 6, dtype=torch.float64)
    advantages = torch.randn(8, dtype=torch.float64)
    cfg = AlgoConfig(name=name, beta=0.05, clip_eps_high=0.28)
    counts = BatchCounts(num_sequences=8, num_tokens=int(mask.sum()))

    def gradient(rows):
        policy.zero_grad()
        batch = PolicyBatch(policy(inputs[rows], targets[rows]), old[rows], ref[rows], advantages[rows], mask[rows])
        loss, stats = compute_policy_loss(batch, counts, cfg, 6)
        loss.backward()
        return [p.grad.clone() for p in policy.parameters()], loss.detach()

    full_grads, full_loss = gradient(slice(0, 8))
    micro = [gradient(slice(start, start + 2)) for start in range(0, 8, 2)]
    summed_grads = [sum(parts) for parts in zip(*(g for g, _ in micro))]
    assert any(g.abs().sum() > 1e-3 for g in full_grads)  # a real gradient, not zeros on both sides
    for full, summed in zip(full_grads, summed_grads):
        torch.testing.assert_close(summed, full, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(sum(loss for _, loss in micro), full_loss, atol=1e-12, rtol=1e-10)


# ---- input checks ------------------------------------------------------------------------


def test_shape_mismatches_name_the_field():
    good = make_batch([[0.0, 0.0]], [[0.0, 0.0]], [1.0])
    with pytest.raises(ValueError, match=r"grpo loss: advantages: expected shape \(1,\)"):
        compute_policy_loss(good._replace(advantages=torch.ones(1, 1)), BatchCounts(1, 2), AlgoConfig(), 4)
    with pytest.raises(ValueError, match="old_logprobs: expected shape"):
        compute_policy_loss(good._replace(old_logprobs=torch.zeros(1, 3)), BatchCounts(1, 2), AlgoConfig(), 4)
    with pytest.raises(ValueError, match="whole optimizer batch"):
        compute_policy_loss(good, BatchCounts(0, 2), AlgoConfig(), 4)


# ---- helpers ----------------------------------------------------------------------------------


def test_masked_sum_and_mean_ignore_padding_even_when_it_is_nan():
    values = torch.tensor([[1.0, 2.0, math.nan], [4.0, math.inf, 6.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 1]])
    close(masked_sum(values, mask), 13.0)
    close(masked_sum(values, mask, dim=1), [3.0, 10.0])
    close(masked_mean(values, mask), 13.0 / 4)
    close(masked_mean(values, mask, dim=1), [1.5, 5.0])
    close(masked_mean(values, torch.zeros_like(mask)), 0.0)  # nothing selected -> 0, not NaN


def test_token_entropy_matches_the_definition_and_ignores_padding():
    # position (0, 0): uniform over 4 -> ln 4 = 1.386294; (0, 1): near one-hot -> ~0; (1, 0): padding (ignored)
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [50.0, 0.0, 0.0, 0.0]], [[9.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]]])
    mask = torch.tensor([[1, 1], [0, 1]])
    p = torch.softmax(torch.tensor([1.0, 2.0, 3.0, 4.0]), dim=0)
    last = -(p * p.log()).sum()  # 0.9475
    expected = (math.log(4) + 0.0 + last) / 3
    close(token_entropy(logits, mask), expected, tol=1e-5)
    close(token_entropy(logits, mask, chunk_size=1), expected, tol=1e-5)  # chunking does not change the result


def test_token_entropy_of_random_logits_equals_categorical_entropy():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 50, dtype=torch.bfloat16)
    mask = torch.rand(3, 7) > 0.3
    reference = torch.distributions.Categorical(logits=logits.float()).entropy()[mask].mean()
    close(token_entropy(logits, mask, chunk_size=4), reference, tol=1e-5)


# ---- loss aggregation as its own setting -------------------------------------------------------------


def test_each_aggregation_on_hand_made_per_token_losses():
    # per-token losses [[1, 2, pad], [3, 4, 5]] (padding holds NaN), batch of 2 sequences and 5 tokens
    per_token = torch.tensor([[1.0, 2.0, math.nan], [3.0, 4.0, 5.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    counts = BatchCounts(num_sequences=2, num_tokens=5)
    # token_mean: (1 + 2 + 3 + 4 + 5) / 5 = 3
    close(LOSS_AGGREGATIONS["token_mean"](per_token, mask, counts, 10), 3.0)
    # seq_mean_token_mean: means 1.5 and 4, over 2 sequences -> 2.75
    close(LOSS_AGGREGATIONS["seq_mean_token_mean"](per_token, mask, counts, 10), 2.75)
    # seq_mean_token_sum_norm with constant 10: sums 3 and 12 -> 0.3 and 1.2, over 2 sequences -> 0.75
    close(LOSS_AGGREGATIONS["seq_mean_token_sum_norm"](per_token, mask, counts, 10), 0.75)
    # a micro-batch holding only the second sequence is its share of the whole batch: 12 / 5 = 2.4 for token_mean
    close(LOSS_AGGREGATIONS["token_mean"](per_token[1:], mask[1:], counts, 10), 2.4)


@pytest.mark.parametrize("loss_agg, expected", [("token_mean", 0.5), ("seq_mean_token_mean", 0.0),
                                                ("seq_mean_token_sum_norm", 0.25)])
def test_an_explicit_loss_agg_wins_over_the_preset(loss_agg, expected):
    # grpo's own aggregation gives 0.0 on this batch (see the unequal-lengths test above); each explicit
    # aggregation gives what its preset gives there
    loss, _ = compute_policy_loss(unequal_lengths_batch(), BatchCounts(2, 4), AlgoConfig(name="grpo", loss_agg=loss_agg), 4)
    close(loss, expected)


def test_unknown_loss_or_aggregation_lists_the_valid_choices():
    batch = make_batch([[0.0]], [[0.0]], [1.0])
    with pytest.raises(ValueError, match=r"algo.loss_agg 'seq_mean'.*\['seq_mean_token_mean', 'seq_mean_token_sum_norm', 'token_mean'\]"):
        compute_policy_loss(batch, BatchCounts(1, 1), AlgoConfig(loss_agg="seq_mean"), 16)
    with pytest.raises(ValueError, match=r"algo.loss 'ppo'.*\['mirror_descent', 'ppo_clip'\]"):
        compute_policy_loss(batch, BatchCounts(1, 1), AlgoConfig(loss="ppo"), 16)
