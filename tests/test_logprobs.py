"""forward_logits on a text-only batch runs the vision tower on a blank image (so every rank touches the same
modules) without changing the logits or any gradient but the vision tower's, which are exact zeros (real tiny model)."""

import pytest
import torch

from mmreason.config import ModelConfig
from mmreason.logprobs import forward_logits, idle_vision_term, vision_tower
from mmreason.models import load_policy


@pytest.fixture(scope="module")
def text_batch(tiny_checkpoint):
    model, processor = load_policy(ModelConfig(path=str(tiny_checkpoint), freeze_vision=False, freeze_merger=False))
    ids = processor.tokenizer(["What is 2 + 3? It is 5.", "Count to three."], return_tensors="pt", padding=True)
    return model, ids["input_ids"], ids["attention_mask"]


def grads_after(model, logits):
    model.zero_grad()
    logits.sum().backward()
    return {name: (None if p.grad is None else p.grad.clone()) for name, p in model.named_parameters()}


def test_blank_image_pass_changes_no_logit_and_no_language_gradient(text_batch):
    model, input_ids, attention_mask = text_batch
    with_idle = forward_logits(model, input_ids, attention_mask)
    plain = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits.float()
    torch.testing.assert_close(with_idle, plain, rtol=0, atol=0)
    idle_grads, plain_grads = grads_after(model, with_idle), grads_after(model, plain)
    visual_names = {f"model.visual.{name}" for name, _ in vision_tower(model).named_parameters()}
    assert visual_names and visual_names <= set(idle_grads)
    for name, grad in idle_grads.items():
        if name in visual_names:
            # present (so every rank reduces the same buckets) and exactly zero (so nothing changes)
            assert grad is not None and torch.count_nonzero(grad) == 0, name
            assert plain_grads[name] is None, name
        else:
            torch.testing.assert_close(grad, plain_grads[name], rtol=0, atol=0)


def test_no_blank_pass_for_a_frozen_tower_outside_zero3(tiny_checkpoint):
    model, _ = load_policy(ModelConfig(path=str(tiny_checkpoint), freeze_vision=True, freeze_merger=True))
    assert idle_vision_term(model) is None
    trainable, _ = load_policy(ModelConfig(path=str(tiny_checkpoint), freeze_vision=True, freeze_merger=False))
    assert idle_vision_term(trainable).item() == 0.0


def test_chunked_response_logprobs_equal_the_full_logits_computation(text_batch):
    """Log-probs, entropy and gradients from the chunked head equal those of the plain [b, T, V] logits."""
    from mmreason.logprobs import response_logprobs, token_entropy

    model, input_ids, attention_mask = text_batch
    L = 5
    response_ids, mask = input_ids[:, -L:], attention_mask[:, -L:]
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}

    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits.float()[:, -L - 1 : -1] / 0.7
    expected = torch.log_softmax(logits, -1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    expected_grads = grads_after(model, (expected * mask).sum())
    expected_entropy = token_entropy(logits.detach(), mask) * mask.sum()

    for chunk_tokens in (1, 3, 4096):  # one position per chunk, a ragged split, everything at once
        out = response_logprobs(model, inputs, response_ids, mask, temperature=0.7, chunk_tokens=chunk_tokens)
        assert out.logprobs.shape == (2, L) and out.logprobs.dtype == torch.float32
        torch.testing.assert_close(out.logprobs, expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.entropy_sum, expected_entropy, rtol=1e-5, atol=1e-5)
        grads = grads_after(model, (out.logprobs * mask).sum())
        for name, grad in expected_grads.items():
            if grad is not None:
                torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_tokens_the_sampler_never_draws_have_probability_zero(text_batch):
    """With suppressed ids (the vision tokens) the log-probs and entropy are those of the renormalised distribution
    the engines sample from (hf's suppress_tokens, vLLM's -inf logit bias)."""
    from mmreason.logprobs import response_logprobs, token_entropy

    model, input_ids, attention_mask = text_batch
    suppressed = [5, 7, 11]
    L = 4
    response_ids, mask = input_ids[:, -L:], attention_mask[:, -L:]
    assert not set(suppressed) & set(response_ids.flatten().tolist())
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits.float()[:, -L - 1 : -1]
        logits[..., suppressed] = float("-inf")
        expected = torch.log_softmax(logits, -1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
        out = response_logprobs(model, {"input_ids": input_ids, "attention_mask": attention_mask}, response_ids, mask,
                                suppressed_ids=suppressed, chunk_tokens=3)
    torch.testing.assert_close(out.logprobs, expected, rtol=1e-5, atol=1e-5)
    entropy = token_entropy(logits, mask) * mask.sum()
    assert torch.isfinite(out.entropy_sum)
    torch.testing.assert_close(out.entropy_sum, entropy, rtol=1e-5, atol=1e-5)
