"""LoRA through `peft`: adapters on the policy's linear layers (`model.lora=true`), everything else frozen.

    model = apply_lora(model, cfg.model, vision=vision_tower(model))   # a peft PeftModel; only lora_A / lora_B train
    with adapters_disabled(model): ...                                 # the base model: the reference policy, no copy
    for name, tensor in iter_merged_weights(model): ...                # base weights + B @ A * alpha / r, base names

Which layers get an adapter: every `nn.Linear` of the language model whose last name is in
`model.lora_target_modules` (default: the attention and MLP projections), and with `model.lora_vision` every
`nn.Linear` of the vision tower (its blocks and the patch merger). The output head and the embeddings never do.

Merged weights are what leaves the trainer: the HF export (an ordinary checkpoint, no peft needed to load it)
and the vllm engine's weight sync. They are computed module by module (ZeRO-3: each module gathered in turn),
never by merging in place, so the training weights are not touched by a merge / unmerge round trip.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from mmreason.config import ModelConfig
from mmreason.distributed import gathered, module_own_weights

ADAPTER_MARKER = "lora_"
"""Every adapter parameter's name contains it (lora_A, lora_B, lora_embedding_*, lora_magnitude_vector)."""


def unwrap(model: Any) -> Any:
    """The module inside a DeepSpeed engine (`.module`), else `model` itself."""
    return model.module if isinstance(getattr(model, "module", None), torch.nn.Module) else model


def is_lora(model: Any) -> bool:
    """Whether `model` (or the module of a DeepSpeed engine) carries peft LoRA adapters."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(unwrap(model), PeftModel)


def base_model(model: Any) -> torch.nn.Module:
    """The transformers model under the adapters (its LoRA layers still in place), or `model` itself."""
    module = unwrap(model)
    return module.get_base_model() if is_lora(module) else module


def target_module_names(model: torch.nn.Module, names: list[str], vision: torch.nn.Module | None,
                        with_vision: bool) -> list[str]:
    """Full names of the linear layers that get an adapter: the language model's whose last name part is in
    `names`, and with `with_vision` every linear layer of the vision tower `vision`."""
    in_tower = {id(m) for m in vision.modules()} if vision is not None else set()
    wanted = set(names)
    out = []
    for full, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        if id(module) in in_tower:
            if with_vision:
                out.append(full)
        elif full.rsplit(".", 1)[-1] in wanted:
            out.append(full)
    return out


def apply_lora(model: torch.nn.Module, cfg: ModelConfig, vision: torch.nn.Module | None = None) -> torch.nn.Module:
    """`model` wrapped by peft with LoRA adapters as `cfg.lora_*` says; every base parameter is frozen.

    Raises ValueError naming `model.lora_target_modules` when no layer matches.
    """
    from peft import LoraConfig, get_peft_model

    targets = target_module_names(model, list(cfg.lora_target_modules), vision, cfg.lora_vision)
    if not targets:
        raise ValueError(f"config key 'model.lora_target_modules': {list(cfg.lora_target_modules)} names no linear layer "
                         "of the language model (e.g. q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)")
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, bias="none")
    peft_model = get_peft_model(model, lora)
    for name, param in peft_model.named_parameters():  # peft freezes the base; make sure nothing else trains
        param.requires_grad_(ADAPTER_MARKER in name)
    return peft_model


def adapter_parameters(model: Any) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) of every adapter parameter."""
    return [(n, p) for n, p in unwrap(model).named_parameters() if ADAPTER_MARKER in n]


@contextlib.contextmanager
def adapters_disabled(model: Any) -> Iterator[Any]:
    """The base model inside the block: the policy's own forward with its adapters switched off (no copy)."""
    module = unwrap(model)
    with module.disable_adapter():
        yield module


class AdaptersDisabled:
    """Stands for the base model of a LoRA policy wherever a reference model is called: every call runs the
    policy's own forward with its adapters disabled; every attribute is the policy's."""

    def __init__(self, policy: torch.nn.Module):
        self.policy = policy

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with adapters_disabled(self.policy) as module:
            return module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.policy, name)


def base_name(name: str) -> str:
    """A peft parameter / module name -> the base model's name for it (the name an ordinary checkpoint uses)."""
    for prefix in ("base_model.model.", "base_model."):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    else:
        if name in ("base_model", "base_model.model"):
            return ""
    return name.replace(".base_layer.", ".").removesuffix(".base_layer")


def iter_merged_weights(model: Any, select: Callable[[str, torch.nn.Parameter], bool] | None = None,
                        device: str | torch.device | None = "cpu") -> Iterator[tuple[str, torch.Tensor]]:
    """(base name, tensor on `device`, None: where it lives) of every parameter and persistent buffer of the base
    model, each adapted layer's weight merged (W + sum over active adapters of B @ A * scaling, in fp32, cast back
    to W's dtype).

    `select(name, param)` False skips a parameter; an adapted layer is kept when `select` keeps any of its
    parameters (so `trainable` re-sends the layers whose adapters train). Every rank of a ZeRO-3 group must call
    this with the same `select`: each module's gather is a collective.
    """
    from peft.tuners.lora import LoraLayer

    module_root = unwrap(model)
    skip = None
    for module_name, module in module_root.named_modules():
        if skip is not None and module_name.startswith(skip):
            continue
        name = base_name(module_name)
        prefix = f"{name}." if name else ""
        if isinstance(module, LoraLayer):
            skip = module_name + "."
            yield from _merged_layer(module, prefix, select, device)
            continue
        yield from module_own_weights(module, prefix, select, device)


def _merged_layer(layer: Any, prefix: str, select: Callable[[str, torch.nn.Parameter], bool] | None,
                  device: str | torch.device | None) -> Iterator[tuple[str, torch.Tensor]]:
    base = layer.get_base_layer()
    params = list(layer.named_parameters())
    if select is not None and not any(select(prefix + n, p) for n, p in params):
        return
    with gathered([p for _, p in params]):
        weight = base.weight.detach().float()
        for adapter in layer.active_adapters:
            if adapter in layer.lora_A and not layer.disable_adapters:
                weight = weight + layer.get_delta_weight(adapter).float()
        yield prefix + "weight", weight.to(base.weight.dtype).to(device or weight.device).contiguous()
        bias = getattr(base, "bias", None)
        if bias is not None and (select is None or select(prefix + "bias", bias)):  # unchanged by the adapters
            yield prefix + "bias", bias.detach().to(device or bias.device, copy=True).contiguous()


def merged_state_dict(model: Any, keep: bool = True) -> dict[str, torch.Tensor] | None:
    """The base model's state dict with the adapters merged (see `iter_merged_weights`), on the CPU. Under
    ZeRO-3 every rank must call it; ranks with `keep` False walk the gathers but keep nothing (and get None)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in iter_merged_weights(model):
        if keep:
            out[name] = tensor
    return out if keep else None
