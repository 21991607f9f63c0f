"""Micro-batches cut by a token budget (train.micro_batch_tokens) give the same loss, gradient and update as fixed
micro-batches of rows, under ZeRO-2 and ZeRO-3 on two gloo ranks whose rows differ in length (real tiny model); the
on-policy log-probs the update hands back (for rollout/logprob_diff) equal a forward pass of their own."""

import pytest
from test_mixed_modality_ranks import run_workers


def test_token_budget_micro_batches_change_nothing_but_the_plan(tiny_checkpoint, repo_root):
    results = run_workers("two_rank_token_budget.py", [str(tiny_checkpoint)], repo_root)
    for stage in ("zero2", "zero3"):
        rows, tokens = results[stage]["rows"], results[stage]["tokens"]
        assert rows["plan"] == [2, 2, 2, 2]  # 8 rows in micro-batches of 2
        assert tokens["plan"] != rows["plan"] and sum(tokens["plan"]) == 8  # the budget packs differently
        assert tokens["loss"] == pytest.approx(rows["loss"], rel=1e-5, abs=1e-7), stage
        assert tokens["grad_norm"] == pytest.approx(rows["grad_norm"], rel=1e-4), stage
        assert rows["grad_norm"] > 0
        assert tokens["fingerprint"] == pytest.approx(rows["fingerprint"], rel=1e-5, abs=1e-6), stage
        for outcome in (rows, tokens):  # every response token filled, with the rollout policy's log-prob
            assert outcome["response_tokens"] > 0
            assert outcome["on_policy_logprob_gap"] <= 1e-5, (stage, outcome["on_policy_logprob_gap"])
