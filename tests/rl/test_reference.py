"""The reference policy object: which model (if any) it holds, when a k1.5 iteration starts, what it refreshes."""

import torch

from mmreason.config import AlgoConfig
from mmreason.rl.reference import ReferencePolicy


def policy():
    torch.manual_seed(0)
    return torch.nn.Linear(2, 1)


def weight_of(reference):
    return None if reference.model is None else reference.model.weight.detach().clone()


def test_none_and_rollout_hold_no_model():
    none = ReferencePolicy(AlgoConfig(name="grpo"), policy())
    assert none.kind == "none" and weight_of(none) is None and not none.is_rollout_policy
    rollout = ReferencePolicy(AlgoConfig(name="k15"), policy())
    assert rollout.kind == "rollout" and weight_of(rollout) is None and rollout.is_rollout_policy


def test_frozen_keeps_the_starting_weights():
    model = policy()
    start = model.weight.detach().clone()
    reference = ReferencePolicy(AlgoConfig(name="grpo", beta=0.04), model)
    with torch.no_grad():
        model.weight.add_(1.0)
    for step in (1, 2, 3):
        reference.begin_step(step, model, reset_optimizer=lambda: None)
    assert torch.equal(weight_of(reference), start)
    assert not reference.iteration_starts(1)  # a frozen reference has no iterations


def test_snapshot_refreshes_at_each_iteration_start_and_resets_the_optimizer():
    model = policy()
    resets = []
    reference = ReferencePolicy(AlgoConfig(name="k15", reference_refresh_every=2, reset_optimizer_each_iteration=True), model)
    assert reference.kind == "snapshot"
    start = model.weight.detach().clone()
    reference.begin_step(1, model, reset_optimizer=lambda: resets.append(1))
    with torch.no_grad():
        model.weight.add_(1.0)
    reference.begin_step(2, model, reset_optimizer=lambda: resets.append(2))  # mid-iteration: nothing changes
    assert torch.equal(weight_of(reference), start) and resets == []
    reference.begin_step(3, model, reset_optimizer=lambda: resets.append(3))  # steps 3-4 are the second iteration
    assert torch.equal(weight_of(reference), model.weight.detach()) and resets == [3]
    # the snapshot is a copy: training the policy further does not move it
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(weight_of(reference), model.weight.detach())


def test_resume_restarts_the_snapshot_from_the_restored_policy():
    reference = ReferencePolicy(AlgoConfig(name="k15", reference_refresh_every=3), policy())
    restored = torch.nn.Linear(2, 1)
    reference.resumed(restored)
    assert torch.equal(weight_of(reference), restored.weight.detach())
