"""Policy weights -> a safetensors folder an engine reloads from, one module at a time.

Under ZeRO-3 each module's own parameters are gathered (`deepspeed.zero.GatheredParameters`), copied (to CPU
here) and released before the next module is gathered, so no rank ever holds the whole model on its accelerator;
the CPU copies go to disk in shards of at most `shard_bytes`. Names are the policy's `state_dict` names
(tied aliases such as `lm_head.weight` included), which is the checkpoint format engines load.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from mmreason.distributed import module_own_weights
from mmreason.lora import is_lora, iter_merged_weights


def iter_module_weights(model: torch.nn.Module, select: Callable[[str, torch.nn.Parameter], bool] | None = None,
                        device: str | torch.device | None = "cpu") -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for every parameter and persistent buffer, module by module, as copies on `device` (None:
    where each tensor lives).

    A tied parameter is yielded under each of its names. `select(name, param)` False skips a parameter (and its
    gather). Every rank of a ZeRO-3 group must call this with the same `select`: each gather is a collective.
    A LoRA policy (model.lora) yields its base model's names with the adapters merged (mmreason/lora.py).
    """
    if is_lora(model):
        yield from iter_merged_weights(model, select, device)
        return
    for module_name, module in model.named_modules():
        yield from module_own_weights(module, f"{module_name}." if module_name else "", select, device)


def write_weights(model: torch.nn.Module, out_dir: str | Path, *, select: Callable[[str, torch.nn.Parameter], bool] | None = None,
                  shard_bytes: int = 1 << 30) -> list[str]:
    """Write `model`'s weights (those `select` keeps) as model-0000N.safetensors files in an emptied `out_dir`.

    Returns the names written.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    names: list[str] = []
    shard: dict[str, torch.Tensor] = {}
    size = 0

    def flush() -> None:
        nonlocal shard, size
        if shard:
            save_file(shard, str(out / f"model-{len(list(out.glob('*.safetensors'))) + 1:05d}.safetensors"))
        shard, size = {}, 0

    for name, tensor in iter_module_weights(model, select):
        shard[name] = tensor
        names.append(name)
        size += tensor.numel() * tensor.element_size()
        if size >= shard_bytes:
            flush()
    flush()
    return names


def trainable(name: str, param: Any) -> bool:
    """`select` for syncs after the first: only what the optimizer can change (frozen towers stay as loaded)."""
    return bool(param.requires_grad)
