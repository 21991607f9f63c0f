"""The step's gradient does not depend on how its rows are cut into micro-batches, nor, on policy, on whether
the old log-probs come from a forward pass of their own or from the training forward (real tiny model)."""

import pytest
import torch
from rl_builders import dots_problem

from mmreason.config import AlgoConfig, Config, ModelConfig, RolloutConfig
from mmreason.models import load_policy
from mmreason.rl.losses import BatchCounts, PolicyBatch, compute_policy_loss
from mmreason.rl.loop import response_logprobs, rollout_logprobs, rollout_policy_forward_needed
from mmreason.rl.rollout import generate_rollouts


@pytest.fixture(scope="module")
def rollout_and_model(tiny_checkpoint):
    torch.manual_seed(0)
    model, processor = load_policy(ModelConfig(path=str(tiny_checkpoint)))
    cfg = RolloutConfig(group_size=4, max_new_tokens=12, temperature=1.0, generation_batch_size=8, repetition_count=0)
    rollout = generate_rollouts(model, processor, [dots_problem("a", 2), dots_problem("b", 3)], cfg, template="r1_boxed")
    return model, rollout


def reference_and_advantages(old, generator):
    """A reference near `old` and mixed-sign advantages, so the KL and clipped terms both carry gradient."""
    ref = old + 0.2 * torch.randn(old.shape, generator=generator)
    return ref, torch.randn(old.shape[0], generator=generator)


def gradient(model, rollout, rows_per_micro, algo, old, ref, adv):
    """The step's gradient; None for old (or ref) takes each micro-batch's own detached log-probs, as an
    on-policy step does (ref: k1.5 without a snapshot, whose reference is the rollout policy)."""
    model.zero_grad()
    counts = BatchCounts(num_sequences=rollout.num_rows, num_tokens=int(rollout.response_mask.sum()))
    for start in range(0, rollout.num_rows, rows_per_micro):
        rows = torch.arange(start, start + rows_per_micro)
        logp, _ = response_logprobs(model, rollout, rows, temperature=1.0)
        own = logp.detach()
        batch = PolicyBatch(logp, old[rows] if old is not None else own, ref[rows] if ref is not None else own,
                            adv[rows], rollout.response_mask[rows])
        loss, _ = compute_policy_loss(batch, counts, AlgoConfig(name=algo, beta=0.1, tau=0.5), 12)
        loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).clone()


@pytest.mark.parametrize("algo", ["grpo", "dapo", "dr_grpo", "k15"])
def test_one_micro_batch_equals_four(rollout_and_model, algo):
    model, rollout = rollout_and_model
    assert rollout.num_rows == 8
    old = rollout_logprobs(model, rollout, micro_batch_size=8, temperature=1.0)
    generator = torch.Generator().manual_seed(1)
    # Off-policy old/ref log-probs and mixed-sign advantages, so clipping and KL terms are all exercised.
    old = old + 0.3 * torch.randn(old.shape, generator=generator)
    ref, adv = reference_and_advantages(old, generator)
    whole = gradient(model, rollout, 8, algo, old, ref, adv)
    quarters = gradient(model, rollout, 2, algo, old, ref, adv)
    assert whole.abs().sum() > 0
    # fp32 sums in a different order: agreement to float precision of the largest entries.
    torch.testing.assert_close(quarters, whole, rtol=1e-3, atol=1e-5 * float(whole.abs().max()))


@pytest.mark.parametrize("algo", ["grpo", "dapo", "dr_grpo", "k15"])
def test_on_policy_step_can_reuse_the_training_forward(rollout_and_model, algo):
    model, rollout = rollout_and_model
    old = rollout_logprobs(model, rollout, micro_batch_size=4, temperature=1.0)
    ref, adv = reference_and_advantages(old, torch.Generator().manual_seed(2))
    # k1.5 without a snapshot: the reference is the rollout policy too, so it is reused as well.
    rollout_policy_is_ref = algo == "k15"
    separate_pass = gradient(model, rollout, 4, algo, old, old if rollout_policy_is_ref else ref, adv)
    reused = gradient(model, rollout, 4, algo, None, None if rollout_policy_is_ref else ref, adv)
    assert separate_pass.abs().sum() > 0
    torch.testing.assert_close(reused, separate_pass, rtol=1e-4, atol=1e-6 * float(separate_pass.abs().max()))


def test_rollout_policy_forward_only_where_the_policy_moves_first():
    def needed(**algo):
        return rollout_policy_forward_needed(Config(algo=AlgoConfig(**algo)))

    assert not needed(name="grpo", ppo_epochs=1)
    assert needed(name="grpo", ppo_epochs=2)  # the second pass's ratios are against weights already stepped
    assert not needed(name="k15")  # without a snapshot its reference is the rollout policy: the training forward's own
    assert needed(name="k15", ppo_epochs=2)
