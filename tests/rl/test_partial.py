"""Partial rollouts (rl/partial.py): the replay buffer, growing trajectories segment by segment, and the loss on
tokens sampled by policies of different steps (numbers derived in comments)."""

import math

import pytest
import torch

from mmreason.config import AlgoConfig
from mmreason.rl.losses import BatchCounts, PolicyBatch, compute_policy_loss
from mmreason.rl.partial import PartialGroup, ReplayBuffer, Trajectory, grow, new_groups, record_behaviour

EOS = 99


def group(index, finished_flags, segments=1):
    trajectories = [Trajectory(tokens=[1, 2], logprobs=[-0.5, -0.7], steps=[1, 1], ended=flag) for flag in finished_flags]
    return PartialGroup(index=index, trajectories=trajectories, segments=segments, first_step=1)


def test_buffer_keeps_groups_whole_and_oldest_first():
    buffer = ReplayBuffer()
    buffer.put([group(0, [True, False]), group(1, [True, True]), group(2, [False, False]), group(3, [True, True])])
    assert buffer.count(finished=True) == 2 and buffer.count(finished=False) == 2
    taken = buffer.take(1, finished=False)
    assert [g.index for g in taken] == [0]  # the oldest unfinished group, with both its samples
    assert len(taken[0].trajectories) == 2
    assert [g.index for g in buffer.take(5, finished=True)] == [1, 3]
    assert [g.index for g in buffer.groups] == [2]


def test_buffer_round_trips_through_plain_values(tmp_path):
    buffer = ReplayBuffer()
    buffer.put([group(4, [True, False], segments=3)])
    torch.save(buffer.state_dict(), tmp_path / "state.pt")
    again = ReplayBuffer()
    again.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))  # no code runs on load
    assert again.groups == buffer.groups


def test_grow_appends_segments_and_ends_at_eos_or_the_budget():
    t = Trajectory()
    grow(t, [1, 2, 3], False, step=1, max_new_tokens=8, repetition_ngram=4, repetition_count=0)
    grow(t, [4, 5, EOS], True, step=2, max_new_tokens=8, repetition_ngram=4, repetition_count=0)
    assert t.tokens == [1, 2, 3, 4, 5, EOS] and t.steps == [1, 1, 1, 2, 2, 2] and t.ended and not t.truncated
    long = Trajectory()
    grow(long, [1, 2, 3, 4, 5], False, step=1, max_new_tokens=8, repetition_ngram=4, repetition_count=0)
    grow(long, [6, 7, 8, EOS], True, step=2, max_new_tokens=8, repetition_ngram=4, repetition_count=0)
    # only 3 tokens fit (8 - 5): the EOS is cut off, so the trajectory is truncated, not ended
    assert long.tokens == [1, 2, 3, 4, 5, 6, 7, 8] and long.truncated and not long.ended


def test_repetition_spanning_two_segments_is_cut():
    t = Trajectory()
    grow(t, [5, 1, 2, 1, 2], False, step=1, max_new_tokens=64, repetition_ngram=2, repetition_count=4)
    assert not t.finished  # two copies of (1, 2) so far
    grow(t, [1, 2, 1, 2, 7], False, step=2, max_new_tokens=64, repetition_ngram=2, repetition_count=4)
    # four consecutive copies of (1, 2) across the segments: cut after the first copy
    assert t.repetitive and t.tokens == [5, 1, 2] and t.steps == [1, 1, 1] and len(t.logprobs) == 3


def test_behaviour_logprobs_are_recorded_only_for_this_steps_tokens():
    g = new_groups([7], group_size=1, step=1)[0]
    t = g.trajectories[0]
    grow(t, [1, 2], False, step=1, max_new_tokens=8, repetition_ngram=2, repetition_count=0)
    record_behaviour([g], torch.tensor([[-0.1, -0.2]]), step=1)
    grow(t, [3], False, step=2, max_new_tokens=8, repetition_ngram=2, repetition_count=0)
    record_behaviour([g], torch.tensor([[-9.0, -9.0, -0.3]]), step=2)  # step 2's policy sees the old tokens too
    assert t.logprobs == pytest.approx([-0.1, -0.2, -0.3])  # ...but they keep the log-probs of the policy that sampled them


def test_each_token_is_ratioed_against_the_policy_that_sampled_it():
    # One sequence of 3 tokens, A = 1, eps 0.2, GRPO's token mean. Tokens 1-2 were sampled at step 1 (behaviour
    # log-probs -1.0, -1.0), token 3 at step 2 (-1.0 as well: the current policy's own before the update).
    # Current log-probs: [-0.5, -1.1, -1.0] -> ratios e^0.5 = 1.6487 (clipped to 1.2), e^-0.1 = 0.9048, 1.
    logp = torch.tensor([[-0.5, -1.1, -1.0]], dtype=torch.float64, requires_grad=True)
    behaviour = torch.tensor([[-1.0, -1.0, -1.0]], dtype=torch.float64)
    steps = torch.tensor([[1, 1, 2]])
    batch = PolicyBatch(logp, behaviour, None, torch.tensor([1.0], dtype=torch.float64), torch.ones(1, 3, dtype=torch.bool))
    loss, stats = compute_policy_loss(batch, BatchCounts(1, 3), AlgoConfig(name="grpo"), 16)
    # loss = -(1.2 + 0.904837 + 1.0) / 3 = -1.034946
    assert math.isclose(float(loss.detach()), -(1.2 + math.exp(-0.1) + 1.0) / 3, rel_tol=1e-9)
    assert math.isclose(float(stats["clip_fraction"]), 1 / 3, rel_tol=1e-6)  # the stale token 1 is clipped
    # train_old_segments false: only step 2's token is in the loss mask: loss = -1.0 over 1 token
    only_new = batch._replace(response_mask=(steps == 2))
    loss_new, _ = compute_policy_loss(only_new, BatchCounts(1, 1), AlgoConfig(name="grpo"), 16)
    assert math.isclose(float(loss_new.detach()), -1.0, rel_tol=1e-9)
    loss_new.backward()
    assert logp.grad[0, :2].abs().sum() == 0  # old segments get no gradient
