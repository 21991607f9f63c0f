"""Model merging: a weighted average of checkpoints, checked against the hand-computed one."""

import shutil
import subprocess
import sys

import pytest
import torch

from mmreason.long2short.merge import MergeError, check_weights, merge_state_dicts


def test_merge_state_dicts_by_hand():
    a = {"w": torch.tensor([1.0, 2.0]), "steps": torch.tensor([7])}
    b = {"w": torch.tensor([3.0, 6.0]), "steps": torch.tensor([9])}
    merged = merge_state_dicts([a, b], [0.25, 0.75])
    # 0.25 * [1, 2] + 0.75 * [3, 6] = [0.25 + 2.25, 0.5 + 4.5] = [2.5, 5.0]; integer buffers come from the first
    assert merged["w"].tolist() == [2.5, 5.0]
    assert merged["steps"].tolist() == [7]
    with pytest.raises(MergeError, match="'w': shape"):
        merge_state_dicts([a, {"w": torch.zeros(3), "steps": b["steps"]}], [0.5, 0.5])
    with pytest.raises(MergeError, match="'steps' of model 0 is missing from model 1"):
        merge_state_dicts([a, {"w": b["w"]}], [0.5, 0.5])
    with pytest.raises(MergeError, match="sum to"):
        check_weights([0.5, 0.6], 2)


def test_merge_two_tiny_checkpoints_equals_the_average(tiny_checkpoint, tmp_path, repo_root):
    from transformers import AutoModelForImageTextToText

    first = tmp_path / "a"
    second = tmp_path / "b"
    shutil.copytree(tiny_checkpoint, first)
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_checkpoint))
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.add_(0.01 * (i + 1))
    model.save_pretrained(second)
    shutil.copy(first / "tokenizer.json", second / "tokenizer.json")
    out = tmp_path / "merged"
    result = subprocess.run([sys.executable, "scripts/merge_models.py", "--models", str(first), str(second),
                             "--weights", "0.75", "0.25", "--out", str(out)], cwd=repo_root, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    a = AutoModelForImageTextToText.from_pretrained(str(first)).state_dict()
    b = AutoModelForImageTextToText.from_pretrained(str(second)).state_dict()
    merged = AutoModelForImageTextToText.from_pretrained(str(out)).state_dict()
    assert merged.keys() == a.keys()
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(merged[key], 0.75 * a[key] + 0.25 * b[key], rtol=0, atol=1e-6)
    assert (out / "preprocessor_config.json").is_file() or (out / "processor_config.json").is_file()

    # A checkpoint of another shape fails naming the first parameter that differs.
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(tiny_checkpoint))
    config.text_config.intermediate_size += 8
    other = AutoModelForImageTextToText.from_config(config)
    other.save_pretrained(tmp_path / "c")
    result = subprocess.run([sys.executable, "scripts/merge_models.py", "--models", str(first), str(tmp_path / "c"),
                             "--out", str(tmp_path / "bad")], cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 2
    assert "mlp" in result.stderr and "shape" in result.stderr, result.stderr
