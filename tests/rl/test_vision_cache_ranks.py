"""The image-feature cache on two gloo ranks whose prompts differ in modality (rank 0 an image, rank 1 text only or two
images), under ZeRO-2 and ZeRO-3, with the merger trained and frozen: no hang (a rank with nothing to encode runs
the tower's blank image with its peer; forwards from the cache never run the tower), and the update and the
reference log-probs equal those of encoding the images in every forward."""

import pytest
from test_mixed_modality_ranks import run_workers


@pytest.mark.parametrize("stage, other", [(2, "text"), (3, "text"), (3, "two_images")])
def test_cached_features_update_like_encoding_in_every_forward(tiny_checkpoint, repo_root, stage, other):
    results = run_workers("two_rank_vision_cache.py", [str(tiny_checkpoint), str(stage), other], repo_root, timeout=600)
    assert set(results) == {"merger=trained", "merger=frozen"}
    for setting, result in results.items():
        assert result["moved"] > 1e-3, setting  # the update really changed the weights
        # AdamW's first step is lr * g / (|g| + eps), nearly lr * sign(g): float noise of a near-zero gradient
        # entry moves a weight by up to ~1e-5 (lr 1e-2); a wrong feature would move many by ~lr
        assert result["weights"] < 1e-4, (setting, result)
        assert result["ref"] < 1e-5, (setting, result)
        assert result["ranks"] == 0.0, (setting, result)
        # first encode: one tower call on rank 0; on rank 1 too under ZeRO-3 (its blank image, when it has none:
        # the tower is partitioned, so every rank gathers it together); second encode: all hits, no call anywhere
        assert result["tower_calls"] == [[1, 0], [1 if stage == 3 or other != "text" else 0, 0]], (setting, result)
