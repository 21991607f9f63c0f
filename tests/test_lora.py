"""LoRA (model.lora): only adapters train, the reference is the base with adapters disabled, merged weights and
the HF export are an ordinary checkpoint equal to the adapted policy."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from mmreason.config import AlgoConfig, ModelConfig
from mmreason.engine import export_hf
from mmreason.engines.weights import trainable, write_weights
from mmreason.logprobs import response_logprobs
from mmreason.lora import ADAPTER_MARKER, adapter_parameters, is_lora, iter_merged_weights
from mmreason.models import load_policy
from mmreason.rl.reference import ReferencePolicy


def lora_policy(checkpoint, **overrides):
    cfg = ModelConfig(path=str(checkpoint), lora=True, **overrides)
    model, processor = load_policy(cfg)
    torch.manual_seed(0)
    for name, param in adapter_parameters(model):  # B starts at 0 (adapters a no-op): give them a value
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    return model, processor


def batch(vocab=300, b=2, prompt=6, response=5):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab, (b, prompt + response), generator=generator)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    return inputs, ids[:, -response:], torch.ones(b, response)


def logprobs(model, grad=False):
    inputs, response, mask = batch()
    with torch.set_grad_enabled(grad):
        return response_logprobs(model, inputs, response, mask, chunk_tokens=4).logprobs


@pytest.mark.parametrize("vision", [False, True])
def test_only_adapters_train_and_only_they_get_gradients(tiny_checkpoint, vision):
    model, _ = lora_policy(tiny_checkpoint, lora_vision=vision)
    assert is_lora(model)
    trainable_names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable_names and all(ADAPTER_MARKER in n for n in trainable_names)
    in_tower = [n for n in trainable_names if ".visual." in n]
    assert bool(in_tower) == vision
    assert not any("lm_head" in n or "embed_tokens" in n for n in trainable_names)
    logprobs(model, grad=True).sum().backward()
    for name, param in model.named_parameters():
        if ADAPTER_MARKER not in name:
            assert param.grad is None, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_A" in n)


def test_target_modules_that_match_nothing_name_the_key(tiny_checkpoint):
    with pytest.raises(ValueError, match="model.lora_target_modules"):
        load_policy(ModelConfig(path=str(tiny_checkpoint), lora=True, lora_target_modules=["no_such_proj"]))


def test_reference_is_the_base_model_with_adapters_disabled(tiny_checkpoint):
    model, _ = lora_policy(tiny_checkpoint)
    base, _ = load_policy(ModelConfig(path=str(tiny_checkpoint)))
    reference = ReferencePolicy(AlgoConfig(beta=0.04), model)  # beta > 0: frozen reference
    assert reference.kind == "frozen" and reference.model.policy is model  # the policy itself: no copy
    ref, expected, policy = logprobs(reference.model), logprobs(base), logprobs(model)
    torch.testing.assert_close(ref, expected, rtol=0, atol=1e-6)
    assert (policy - expected).abs().max() > 1e-3  # the adapters do change the policy
    torch.testing.assert_close(logprobs(model), policy, rtol=0, atol=0)  # and are on again after the reference pass


def test_merged_weights_are_peft_merge_under_the_base_names(tiny_checkpoint, tmp_path):
    model, _ = lora_policy(tiny_checkpoint, lora_vision=True)
    base, _ = load_policy(ModelConfig(path=str(tiny_checkpoint)))
    merged = dict(iter_merged_weights(model))
    reference = copy.deepcopy(model).merge_and_unload().state_dict()
    assert sorted(merged) == sorted(base.state_dict()) == sorted(reference)
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, reference[name], rtol=1e-6, atol=1e-6)
    # The weight sync after the first one sends only the layers whose adapters train, merged.
    names = write_weights(model, tmp_path / "sync", select=trainable)
    adapted = {n.replace(".lora_A.default", "").replace("base_model.model.", "")
               for n, _ in adapter_parameters(model) if "lora_A" in n}
    assert set(names) == adapted and all(n.endswith(".weight") for n in names)


def test_export_merges_adapters_into_an_ordinary_checkpoint(tiny_checkpoint, tmp_path):
    from transformers import AutoModelForImageTextToText

    model, processor = lora_policy(tiny_checkpoint, lora_vision=True)
    engine = SimpleNamespace(module=model, zero_optimization_stage=lambda: 0)
    out = export_hf(engine, processor, tmp_path, step=1)
    assert not list(out.glob("adapter_*")), "an ordinary checkpoint, not a peft adapter"
    exported = AutoModelForImageTextToText.from_pretrained(out)
    assert not is_lora(exported)
    torch.testing.assert_close(logprobs(exported), logprobs(model), rtol=0, atol=1e-5)
