"""The vllm engine against the hf engine on a real tiny Qwen2.5-VL checkpoint (float32, CPU).

Needs vLLM, so these tests carry the `vllm` marker: the base `pytest -q` deselects them (pyproject addopts
`-m "not vllm"`), and CI runs them in the engine's own virtualenv (.ci/run: `scripts/install_vllm.sh`, then
`pytest -q -m vllm tests/engines`). Without vLLM they fail at the engine fixture rather than skip.
One engine serves the whole module (start-up takes about a minute on 2 cores).
"""

import pytest
import torch

from mmreason.config import ModelConfig, RolloutConfig
from mmreason.engines import build_engine, logprob_abs_diff
from mmreason.generation import encode, generate, generate_samples, vision_token_ids
from mmreason.logprobs import policy_forward
from mmreason.models import load_policy
from mmreason.rl.loop import rollout_logprobs
from mmreason.rl.rollout import generate_rollouts

pytestmark = pytest.mark.vllm
KINDS = ("single_image", "multi_image", "text_only")


@pytest.fixture(scope="module")
def policy(tiny_checkpoint):
    model, processor = load_policy(ModelConfig(path=str(tiny_checkpoint), dtype="float32", freeze_vision=True))
    return model, processor


@pytest.fixture(scope="module")
def engine(policy, tiny_checkpoint):
    model, processor = policy
    eng = build_engine(RolloutConfig(engine="vllm"), model_path=str(tiny_checkpoint), processor=processor, model=model,
                       seed=0)
    yield eng
    eng.close()


def greedy_pair(model, processor, engine, problems, max_new_tokens=24):
    prompts = encode(processor, problems, "r1_boxed", with_images=True)
    hf = generate(model, processor, prompts.batch, temperature=0.0, max_new_tokens=max_new_tokens)
    vl = engine.generate(model, processor, prompts, temperature=0.0, max_new_tokens=max_new_tokens)
    return hf, vl


def assert_same(hf, vl):
    width = hf.response_ids.shape[1]
    assert vl.response_ids.shape[1] == width  # both pad to their longest response
    assert torch.equal(vl.prompt_ids, hf.prompt_ids)
    assert torch.equal(vl.response_ids, hf.response_ids)
    assert torch.equal(vl.response_mask, hf.response_mask)
    assert torch.equal(vl.truncated, hf.truncated)


def perturb_trainable(model, seed: int, scale: float = 0.5) -> None:
    """A deterministic stand-in for an optimizer step: every trainable parameter moves, frozen ones stay."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * scale * (p.detach().abs().mean() + 1e-3))


def test_greedy_agrees_with_hf_before_and_after_a_weight_sync(policy, engine, engine_problems):
    model, processor = policy
    before = {}
    for kind in KINDS:
        hf, vl = greedy_pair(model, processor, engine, engine_problems[kind])
        assert_same(hf, vl)
        before[kind] = hf.response_ids
    perturb_trainable(model, seed=1)
    engine.sync_weights(model)
    changed = 0
    for kind in KINDS:
        hf, vl = greedy_pair(model, processor, engine, engine_problems[kind])
        assert_same(hf, vl)
        changed += not torch.equal(hf.response_ids[:, :before[kind].shape[1]], before[kind][:, :hf.response_ids.shape[1]])
    assert changed > 0, "the perturbation changed no greedy output: the test would not notice a missed sync"


def test_samples_per_prompt_are_adjacent_and_differ(policy, engine, engine_problems):
    model, processor = policy
    problems = engine_problems["single_image"] + engine_problems["text_only"]
    prompts = encode(processor, problems, "r1_boxed", with_images=True)
    out = engine.generate(model, processor, prompts, num_samples=4, temperature=1.0, max_new_tokens=16)
    n = len(problems) * 4
    assert out.response_ids.shape[0] == n and out.response_mask.shape == out.response_ids.shape
    assert out.truncated.shape == (n,) and out.logprobs.shape == out.response_ids.shape
    assert torch.equal(out.prompt_ids, prompts.batch.input_ids.repeat_interleave(4, dim=0))
    for i in range(len(problems)):
        group = out.response_ids[i * 4 : (i + 1) * 4]
        assert len({tuple(r.tolist()) for r in group}) > 1, f"prompt {i}: 4 identical samples at temperature 1"
    vision = torch.tensor([processor.tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|vision_start|>")])
    assert not torch.isin(out.response_ids[out.response_mask.bool()], vision).any()
    assert (out.logprobs[out.response_mask.bool()] <= 0).all() and (out.logprobs[~out.response_mask.bool()] == 0).all()


def test_truncation_flags(policy, engine, engine_problems):
    model, processor = policy
    problems = [p for kind in KINDS for p in engine_problems[kind]]
    hf, vl = greedy_pair(model, processor, engine, problems, max_new_tokens=3)
    assert_same(hf, vl)
    lengths = vl.response_mask.sum(1)
    assert torch.equal(vl.truncated, (lengths == 3) & ~torch.isin(vl.response_ids[:, -1], torch.tensor(engine.eos_ids)))
    assert vl.truncated.any()


def test_engine_logprobs_match_the_trainer(policy, engine, engine_problems):
    model, processor = policy
    problems = engine_problems["single_image"] + engine_problems["multi_image"] + engine_problems["text_only"]
    cfg = RolloutConfig(group_size=3, temperature=0.9, max_new_tokens=16, generation_batch_size=12, repetition_count=0)
    rollout = generate_rollouts(model, processor, problems, cfg, template="r1_boxed", engine=engine)
    assert rollout.engine_logprobs is not None and rollout.engine_logprobs.shape == rollout.response_ids.shape
    trainer = rollout_logprobs(model, rollout, micro_batch_size=6, temperature=cfg.temperature)
    diff = logprob_abs_diff(rollout.engine_logprobs, trainer, rollout.response_mask)
    assert diff.numel() == int(rollout.response_mask.sum())
    # The engine samples (and scores) without vision tokens, the trainer scores over the whole vocabulary: on a
    # random model their ~0.4% of the mass is a floor under rollout/logprob_diff (a trained model gives them ~0).
    assert diff.mean() < 0.05, diff.max()
    # Renormalised without the vision tokens, the trainer's log-probs are the engine's.
    inputs = {k: v for k, v in rollout.model_inputs(torch.arange(rollout.num_rows)).items() if v is not None}
    with torch.no_grad():
        logits = policy_forward(model, **inputs).logits.float()  # with Qwen's 3-D positions, as vLLM
    P = rollout.prompt_ids.shape[1]
    logits = logits[:, P - 1 : -1] / cfg.temperature  # position t predicts token t + 1
    logits[..., vision_token_ids(processor)] = float("-inf")
    masked = torch.log_softmax(logits, dim=-1).gather(-1, rollout.response_ids[..., None]).squeeze(-1)
    exact = logprob_abs_diff(rollout.engine_logprobs, masked, rollout.response_mask)
    # Measured: every row to float32 rounding (max 1e-6), image rows included, now that the trainer gives image
    # tokens Qwen's 3-D rope positions as vLLM does (with text positions image rows were ~1e-3 off).
    assert exact.numel() > 0 and exact.max() < 1e-4, exact.max()
    assert any(p.images for p in rollout.row_problems()) and any(not p.images for p in rollout.row_problems())


def test_callers_switch_engine_by_argument(policy, engine, engine_problems):
    model, processor = policy
    problems = engine_problems["single_image"] + engine_problems["text_only"]
    hf = generate_samples(model, processor, problems, template="r1_boxed", max_new_tokens=12)
    vl = generate_samples(model, processor, problems, template="r1_boxed", max_new_tokens=12, engine=engine)
    assert hf == vl
