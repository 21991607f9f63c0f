"""A LoRA policy (model.lora) through the vllm engine: the engine samples from the merged weights. The engine's
log-probs of its own samples equal the live LoRA policy's (renormalised without vision tokens, as in
test_vllm_engine.py), at start and after the adapters move (a sync then sends only the adapted layers, merged).
Log-probs rather than greedy text, whose near-ties a random model can flip on rounding. Every row, image rows
included, agrees to float32 rounding once the trainer gives image tokens Qwen's 3-D positions as vLLM does (before
that fix image rows were ~1e-3 off); a stale engine is off by ~0.5 on text rows. Needs vLLM: `pytest -m vllm` in the
engine's virtualenv."""

import pytest
import torch

from mmreason.config import ModelConfig, RolloutConfig
from mmreason.engines import build_engine, logprob_abs_diff
from mmreason.generation import vision_token_ids
from mmreason.logprobs import policy_forward
from mmreason.lora import adapter_parameters
from mmreason.models import load_policy
from mmreason.rl.rollout import generate_rollouts

pytestmark = pytest.mark.vllm


def move_adapters(model, generator, scale=0.02):
    with torch.no_grad():
        for name, param in adapter_parameters(model):
            if "lora_B" in name:
                param.add_(torch.randn(param.shape, generator=generator) * scale)


def engine_vs_policy(model, processor, engine, problems):
    """(max |diff| over all response tokens, max |diff| over text-only rows) of engine vs policy log-probs."""
    cfg = RolloutConfig(group_size=2, temperature=0.9, max_new_tokens=12, generation_batch_size=12, repetition_count=0)
    rollout = generate_rollouts(model, processor, problems, cfg, template="r1_boxed", engine=engine)
    inputs = {k: v for k, v in rollout.model_inputs(torch.arange(rollout.num_rows)).items() if v is not None}
    with torch.no_grad():
        logits = policy_forward(model, **inputs).logits.float()  # Qwen's 3-D positions, as the trainer
    P = rollout.prompt_ids.shape[1]
    logits = logits[:, P - 1 : -1] / cfg.temperature
    logits[..., vision_token_ids(processor)] = float("-inf")
    policy = torch.log_softmax(logits, dim=-1).gather(-1, rollout.response_ids[..., None]).squeeze(-1)
    text_rows = torch.tensor([not p.images for p in rollout.row_problems()])
    diff = logprob_abs_diff(rollout.engine_logprobs, policy, rollout.response_mask)
    text = logprob_abs_diff(rollout.engine_logprobs, policy, rollout.response_mask * text_rows[:, None])
    return float(diff.max()), float(text.max())


def test_vllm_samples_from_the_merged_lora_policy(tiny_checkpoint, engine_problems):
    model, processor = load_policy(ModelConfig(path=str(tiny_checkpoint), dtype="float32", lora=True, lora_vision=True))
    generator = torch.Generator().manual_seed(0)
    move_adapters(model, generator)  # adapters that already change the policy before the engine's first sync
    problems = engine_problems["single_image"] + engine_problems["multi_image"] + engine_problems["text_only"]
    engine = build_engine(RolloutConfig(engine="vllm"), model_path=str(tiny_checkpoint), processor=processor,
                          model=model, seed=0)
    try:
        worst, _ = engine_vs_policy(model, processor, engine, problems)
        assert worst < 1e-4, worst
        move_adapters(model, generator)
        _, stale_text = engine_vs_policy(model, processor, engine, problems)
        assert stale_text > 1e-2, "moving the adapters did not change the policy: a missed sync would go unnoticed"
        engine.sync_weights(model)
        worst, _ = engine_vs_policy(model, processor, engine, problems)
        assert worst < 1e-4, worst
    finally:
        engine.close()
