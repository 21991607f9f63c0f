"""k1.5's snapshot reference is refreshed from the DeepSpeed policy under ZeRO-0, 2 and 3, and held replicated,
partitioned (ZeRO-3) or offloaded to CPU (two gloo ranks, real tiny model). Under ZeRO-3 the policy's parameters are
partitioned: a deepcopy or a state_dict of it holds placeholders, so the snapshot must gather them module by module,
and a partitioned reference must be written back to its partitions."""

from test_mixed_modality_ranks import run_workers


def test_snapshot_equals_the_updated_policy_under_every_zero_stage_and_placement(tiny_checkpoint, repo_root):
    results = run_workers("two_rank_reference_snapshot.py", [str(tiny_checkpoint)], repo_root)
    assert sorted(results) == ["zero0-replicated", "zero2-offloaded", "zero2-replicated", "zero3-partitioned",
                               "zero3-replicated"]
    for case, result in results.items():
        assert result["update_moved"] > 1e-4, case  # the update changed the policy...
        assert result["snapshot_vs_policy"] == 0.0, case  # ...the snapshot holds the updated weights...
        assert result["logits_vs_policy"] < 1e-5, case  # ...and computes what the policy computes
