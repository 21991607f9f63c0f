"""Golden tests for the group-relative advantage estimators (numbers derived in comments)."""

import math

import pytest
import torch

from mmreason.config import ALGORITHMS, AlgoConfig
from mmreason.rl.advantages import ADVANTAGE_ESTIMATORS, compute_advantages, informative_groups
from mmreason.rl.presets import PRESETS


def test_every_preset_names_a_registered_estimator():
    assert sorted(PRESETS) == sorted(ALGORITHMS)
    assert {p.advantage for p in PRESETS.values()} == set(ADVANTAGE_ESTIMATORS)


def test_an_explicit_estimator_wins_over_the_preset():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    # grpo's preset normalises (1.5, -0.5, ...); group_center leaves r - mean = 0.75, -0.25
    adv = compute_advantages(rewards, AlgoConfig(name="grpo", advantage="group_center"))
    torch.testing.assert_close(adv, torch.tensor([[0.75, -0.25, -0.25, -0.25]]))
    with pytest.raises(ValueError, match=r"algo.advantage 'group_mean'.*\['group_center', 'group_norm'\]"):
        compute_advantages(rewards, AlgoConfig(advantage="group_mean"))


@pytest.mark.parametrize("name", ["grpo", "dapo"])
def test_grpo_and_dapo_normalise_by_unbiased_group_std(name):
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0]])
    adv = compute_advantages(rewards, AlgoConfig(name=name))
    assert adv.shape == (2, 4)
    # group 0: mean 0.25; deviations 0.75, -0.25 x3; sum of squares 0.75; unbiased var 0.75/3 = 0.25 -> std 0.5
    # -> advantages 0.75/0.5 = 1.5 and -0.25/0.5 = -0.5
    # group 1: mean 0.5; deviations +-0.5; var 1/3 -> std 0.57735 -> +-0.5/0.57735 = +-0.866025
    expected = torch.tensor([[1.5, -0.5, -0.5, -0.5], [0.866025, -0.866025, -0.866025, 0.866025]])
    torch.testing.assert_close(adv, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["dr_grpo", "k15"])
def test_dr_grpo_and_k15_only_subtract_the_group_mean(name):
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0], [2.0, 0.5, 0.5, 1.0]])
    adv = compute_advantages(rewards, AlgoConfig(name=name))
    # group 0: mean 0.25; group 1: mean 4/4 = 1.0
    expected = torch.tensor([[0.75, -0.25, -0.25, -0.25], [1.0, -0.5, -0.5, 0.0]])
    torch.testing.assert_close(adv, expected)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_group_of_equal_rewards_gets_exactly_zero_advantage(name):
    # 0.1 and 0.7 are not exact in binary; r - mean could leave a residue of ~1e-8 without the explicit zeroing
    rewards = torch.tensor([[0.1, 0.1, 0.1], [0.7, 0.7, 0.7], [1.0, 0.0, 1.0]])
    adv = compute_advantages(rewards, AlgoConfig(name=name))
    assert torch.equal(adv[:2], torch.zeros(2, 3))
    assert (adv[2] != 0).all()


def test_advantages_sum_to_zero_within_each_group():
    torch.manual_seed(0)
    rewards = torch.rand(5, 8)
    for name in ALGORITHMS:
        adv = compute_advantages(rewards, AlgoConfig(name=name))
        torch.testing.assert_close(adv.sum(dim=1), torch.zeros(5), atol=1e-5, rtol=0)


def test_unknown_algorithm_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"'ppo'.*\['dapo', 'dr_grpo', 'grpo', 'k15'\]"):
        compute_advantages(torch.zeros(1, 2), AlgoConfig(name="ppo"))


def test_bad_reward_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"\[B, G\].*\(4,\)"):
        compute_advantages(torch.zeros(4), AlgoConfig())
    with pytest.raises(ValueError, match="G >= 2"):
        compute_advantages(torch.zeros(3, 1), AlgoConfig())
    with pytest.raises(ValueError, match="NaN"):
        compute_advantages(torch.tensor([[1.0, math.nan]]), AlgoConfig())


def test_informative_groups_drops_all_right_and_all_wrong_groups():
    accuracy = torch.tensor([[True, True, True], [False, False, False], [True, False, False], [False, False, True]])
    kept = informative_groups(accuracy)
    assert kept.dtype == torch.bool
    assert kept.tolist() == [False, False, True, True]
    # float accuracies work the same way
    assert informative_groups(torch.tensor([[1.0, 1.0], [0.0, 1.0]])).tolist() == [False, True]
