"""Cached frozen-tower image features (mmreason/vision_cache.py) change nothing but the work: the same log-probs,
loss and gradients (merger included) as encoding the images in every forward, on the real tiny model with a
several-window image, a two-image prompt, a text-only prompt and G = 3 samples each."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "rl"))
from rl_builders import dots_problem  # noqa: E402

from mmreason import vision_cache  # noqa: E402
from mmreason.config import AlgoConfig, ModelConfig, RolloutConfig  # noqa: E402
from mmreason.models import load_policy  # noqa: E402
from mmreason.problem import Problem  # noqa: E402
from mmreason.rl.losses import BatchCounts, PolicyBatch, compute_policy_loss  # noqa: E402
from mmreason.rl.loop import response_logprobs, rollout_logprobs  # noqa: E402
from mmreason.rl.rollout import generate_rollouts  # noqa: E402

G = 3


def problems() -> list[Problem]:
    big = dots_problem("big", 3)
    big.images = [big.images[0].resize((224, 224))]  # 16 x 16 patches: 2 x 2 attention windows, so permuted
    two = Problem(pid="two", question="<image> and <image>: how many dots in all?", answer="3", answer_type="integer",
                  images=[dots_problem("a", 1).images[0], dots_problem("b", 2).images[0].resize((168, 224))])
    text = Problem(pid="text", question="What is 2 + 3?", answer="5", answer_type="integer")
    return [big, two, text]


def policy_and_rollout(checkpoint, freeze_merger: bool):
    torch.manual_seed(0)
    model, processor = load_policy(ModelConfig(path=str(checkpoint), freeze_merger=freeze_merger))
    cfg = RolloutConfig(group_size=G, max_new_tokens=10, repetition_count=0, generation_batch_size=3 * G)
    return model, generate_rollouts(model, processor, problems(), cfg, template="r1_boxed")


@pytest.fixture(scope="module", params=[False, True], ids=["merger_trained", "merger_frozen"])
def setup(request, tiny_checkpoint):
    return policy_and_rollout(tiny_checkpoint, request.param)


def count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_the_rollout_has_what_the_test_needs(setup):
    model, rollout = setup
    grids = rollout.image_grid_thw
    assert [None if g is None else g.shape[0] for g in grids] == [1, 2, None]
    order = vision_cache.window_order(vision_cache.vision_tower(model), grids[0])
    assert not torch.equal(order, torch.arange(order.numel()))  # the window permutation really permutes
    assert vision_cache.cacheable(model)


def test_cached_states_through_the_merger_are_the_towers_features(setup):
    model, rollout = setup
    visual = vision_cache.vision_tower(model)
    pixels = torch.cat([p for p in rollout.pixel_values if p is not None])
    grids = torch.cat([g for g in rollout.image_grid_thw if g is not None])
    with torch.no_grad():
        expected = visual(pixels, grid_thw=grids).pooler_output
        states = vision_cache.tower_states(visual, pixels, grids)
        assert [s.shape[0] for s in states] == grids.prod(dim=1).tolist()
        images = vision_cache.CachedImages(states, [0, 1, 2], grids)
        got = torch.cat(vision_cache.image_features(model, images))
        # each image alone through the tower gives the same states as all together (attention never crosses images)
        alone = vision_cache.tower_states(visual, rollout.pixel_values[0], rollout.image_grid_thw[0])[0]
    assert got.shape == expected.shape == (int(grids.prod(dim=1).sum()) // 4, 128)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(alone, states[0], rtol=1e-5, atol=1e-6)


def step_gradient(model, rollout, old, adv, image_states, rows_per_micro=4):
    """(loss, {name: grad}) of one update over the rollout's rows, micro-batch by micro-batch (the last one text-only)."""
    model.zero_grad()
    counts = BatchCounts(num_sequences=rollout.num_rows, num_tokens=int(rollout.response_mask.sum()))
    total = 0.0
    for start in range(0, rollout.num_rows, rows_per_micro):
        rows = torch.arange(start, min(start + rows_per_micro, rollout.num_rows))
        logp, _ = response_logprobs(model, rollout, rows, 1.0, image_states=image_states)
        batch = PolicyBatch(logp, old[rows], old[rows] + 0.1, adv[rows], rollout.response_mask[rows])
        loss, _ = compute_policy_loss(batch, counts, AlgoConfig(name="grpo", beta=0.1), 10)
        loss.backward()
        total += float(loss.detach())
    return total, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_loss_and_gradients_match_encoding_in_every_forward(setup):
    model, rollout = setup
    assert rollout.num_rows == 3 * G
    cache = vision_cache.ImageFeatureCache(64)
    states = vision_cache.encode_prompts(cache, model, rollout.pixel_values, rollout.image_grid_thw)
    assert [None if s is None else len(s) for s in states] == [1, 2, None]
    old = rollout_logprobs(model, rollout, 4, 1.0)
    old_cached = rollout_logprobs(model, rollout, 4, 1.0, image_states=states)
    torch.testing.assert_close(old_cached, old, rtol=1e-5, atol=1e-5)
    generator = torch.Generator().manual_seed(0)
    old = old + 0.2 * torch.randn(old.shape, generator=generator)  # off-policy, so the ratios and clipping act
    adv = torch.randn(rollout.num_rows, generator=generator)
    loss, grads = step_gradient(model, rollout, old, adv, None)
    loss_cached, grads_cached = step_gradient(model, rollout, old, adv, states)
    assert loss != 0.0
    assert loss_cached == pytest.approx(loss, rel=1e-5, abs=1e-7)
    assert grads_cached.keys() == grads.keys()
    merger_trains = any(p.requires_grad for p in vision_cache.vision_tower(model).merger.parameters())
    assert any(".merger." in name for name in grads) == merger_trains
    assert not any("visual.blocks" in name or "patch_embed" in name for name in grads)  # the tower is frozen
    for name, grad in grads.items():
        scale = float(grad.abs().max())
        torch.testing.assert_close(grads_cached[name], grad, rtol=1e-4, atol=1e-5 * max(scale, 1e-6), msg=name)
    if merger_trains:
        assert float(grads["model.visual.merger.mlp.2.weight"].abs().sum()) > 0


def test_the_tower_runs_once_per_new_image_and_never_on_a_hit(setup):
    model, rollout = setup
    visual = vision_cache.vision_tower(model)
    tower_calls, block_calls, merger_calls = count_calls(visual), count_calls(visual.blocks[0]), count_calls(visual.merger)
    cache = vision_cache.ImageFeatureCache(64)
    states = vision_cache.encode_prompts(cache, model, rollout.pixel_values, rollout.image_grid_thw)
    assert (tower_calls[0], block_calls[0], cache.misses, len(cache)) == (1, 1, 3, 3)  # 3 images, one call
    rollout_logprobs(model, rollout, 4, 1.0, image_states=states)
    again = vision_cache.encode_prompts(cache, model, rollout.pixel_values, rollout.image_grid_thw)  # a later step
    assert (tower_calls[0], block_calls[0], cache.hits) == (1, 1, 3)
    assert all(a is b for s, t in zip(states, again) if s is not None for a, b in zip(s, t))
    # 3 forwards: two with images, one text-only (the merger's blank x0 term when it trains); none runs the blocks
    merger_trains = any(p.requires_grad for p in visual.merger.parameters())
    assert merger_calls[0] == 1 + 2 + int(merger_trains)


def test_least_recently_used_entries_are_evicted_past_the_budget():
    cache = vision_cache.ImageFeatureCache(max_mib=2)
    mib = torch.zeros(2**18)  # 1 MiB of float32
    cache.put("a", mib)
    cache.put("b", mib.clone())
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", mib.clone())
    assert ("a" in cache, "b" in cache, "c" in cache) == (True, False, True)
    assert (cache.evictions, cache.bytes, cache.stats()["vision_cache/mib"]) == (1, 2 * 2**20, 2.0)
    cache.put("huge", torch.zeros(2**20))  # 4 MiB: larger than the whole budget, never kept, evicts nothing
    assert ("huge" in cache, len(cache)) == (False, 2)
    assert cache.get("b") is None and cache.misses == 1


def test_image_keys_follow_the_pixels_and_the_grid():
    pixels = torch.randn(16 + 64, 12)
    grids = torch.tensor([[1, 4, 4], [1, 8, 8]])
    keys = vision_cache.image_keys(pixels, grids)
    assert len(set(keys)) == 2
    assert vision_cache.image_keys(pixels[16:], grids[1:]) == keys[1:]  # an image's key is its own
    changed = pixels.clone()
    changed[20, 0] += 1e-3
    assert vision_cache.image_keys(changed, grids)[1] != keys[1]
    assert vision_cache.image_keys(pixels, torch.tensor([[1, 4, 4], [1, 4, 16]]))[1] != keys[1]


def test_no_caching_when_the_tower_trains(tiny_checkpoint):
    model, _ = load_policy(ModelConfig(path=str(tiny_checkpoint), freeze_vision=False))
    assert not vision_cache.cacheable(model)
    lora, _ = load_policy(ModelConfig(path=str(tiny_checkpoint), lora=True, lora_vision=True))
    assert not vision_cache.cacheable(lora)
    lora_text, _ = load_policy(ModelConfig(path=str(tiny_checkpoint), lora=True))
    assert vision_cache.cacheable(lora_text)


def test_qwen2_vl_towers_have_no_window_order_and_match_too():
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    torch.manual_seed(0)
    config = Qwen2VLConfig(
        text_config=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=256, rope_scaling={"type": "mrope", "mrope_section": [4, 6, 6]}),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, spatial_merge_size=2,
                           patch_size=14, temporal_patch_size=2, in_channels=3))
    model = Qwen2VLForConditionalGeneration(config).eval()
    visual = vision_cache.vision_tower(model)
    grids = torch.tensor([[1, 8, 8], [1, 4, 6]])
    pixels = torch.randn(int(grids.prod(dim=1).sum()), 3 * 2 * 14 * 14)
    assert vision_cache.window_order(visual, grids) is None
    with torch.no_grad():
        expected = visual(pixels, grid_thw=grids).pooler_output
        states = vision_cache.tower_states(visual, pixels, grids)
        got = torch.cat(vision_cache.image_features(model, vision_cache.CachedImages(states, [0, 1], grids)))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert vision_cache.idle_merger_term(model) is not None  # trainable merger: a blank term on image-less ranks


def test_a_lora_policy_and_its_adapters_disabled_reference_read_the_cache_alike(tiny_checkpoint):
    from mmreason.lora import AdaptersDisabled

    torch.manual_seed(0)
    model, processor = load_policy(ModelConfig(path=str(tiny_checkpoint), lora=True))
    with torch.no_grad():  # adapters that change the output, so the policy and its base differ
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    rollout = generate_rollouts(model, processor, problems()[:2], RolloutConfig(group_size=2, max_new_tokens=6,
                                                                                repetition_count=0), template="r1_boxed")
    states = vision_cache.encode_prompts(vision_cache.ImageFeatureCache(64), model, rollout.pixel_values,
                                         rollout.image_grid_thw)
    reference = AdaptersDisabled(model)
    for policy in (model, reference):
        torch.testing.assert_close(rollout_logprobs(policy, rollout, 2, 1.0, image_states=states),
                                   rollout_logprobs(policy, rollout, 2, 1.0), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(rollout_logprobs(model, rollout, 2, 1.0), rollout_logprobs(reference, rollout, 2, 1.0))
