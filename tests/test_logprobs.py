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
