"""LoRA (model.lora) end to end on two ranks: RL under ZeRO-3 with a KL to the adapters-disabled base, SFT under
ZeRO-2; each export is an ordinary checkpoint that AutoModelForImageTextToText loads, and it differs from the
base only where adapters were (the embeddings and the output head stay as they were)."""

import math
import subprocess

import torch

from mmreason.metrics import read_metrics
from test_train_rl import rl_command
from test_train_sft import deepspeed_launcher, sft_command


def load_export(path):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(path).state_dict()


def assert_export_merged(export_dir, base_dir, vision: bool):
    assert (export_dir / "config.json").is_file() and not list(export_dir.glob("adapter_*"))
    exported, base = load_export(export_dir), load_export(base_dir)
    assert sorted(exported) == sorted(base)
    changed = {name for name in base if not torch.equal(exported[name], base[name])}
    assert any(".language_model." in n and n.endswith("proj.weight") for n in changed), sorted(changed)[:5]
    assert not any("embed_tokens" in n or "lm_head" in n or "norm" in n for n in changed), sorted(changed)
    assert any(".visual." in n for n in changed) == vision


def test_lora_rl_zero3_two_ranks(corpus, tiny_checkpoint, tmp_path, repo_root):
    out = tmp_path / "rl"
    cmd = rl_command(corpus, tiny_checkpoint, out, "model.lora=true", "model.lora_vision=true", "train.zero_stage=3",
                     "algo.dynamic_sampling=false", "algo.beta=0.04", "reward.length_penalty_weight=0.2",
                     "optim.lr=1e-2", "train.max_steps=2", "train.save_every=2", "rollout.max_new_tokens=12",
                     "train.micro_batch_size=8", launcher=deepspeed_launcher())
    result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(math.isfinite(m["loss"]) and math.isfinite(m["kl"]) for m in metrics)
    assert metrics[0]["kl"] == 0.0  # step 1: the policy is the base (B = 0), the reference its adapters-off self
    for before, after in zip(metrics, metrics[1:]):  # once an update moved the adapters, the policy left the base
        assert after["kl"] > 0 or before["grad_norm"] == 0.0 and before["kl"] == 0.0
    assert any(m["grad_norm"] > 0 for m in metrics)
    assert metrics[-1]["ranks/weight_max_diff"] == 0.0
    assert_export_merged(out / "hf" / "latest", tiny_checkpoint, vision=True)


def test_lora_sft_two_ranks(corpus, tiny_checkpoint, tmp_path, repo_root):
    out = tmp_path / "sft"
    cmd = sft_command(corpus, tiny_checkpoint, out, "model.lora=true", "train.zero_stage=2", "train.max_steps=2",
                      "train.save_every=2", "train.batch_size=8", "optim.lr=1e-2", "data.eval=null",
                      launcher=deepspeed_launcher())
    result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2] and all(math.isfinite(m["loss"]) for m in metrics)
    assert_export_merged(out / "hf" / "latest", tiny_checkpoint, vision=False)
