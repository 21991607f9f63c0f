"""Load a policy (model + processor) from a checkpoint directory or hub id.

Real checkpoints (`Qwen/Qwen2.5-VL-7B-Instruct`) and the tiny embedded one
built by `scripts/make_tiny_model.py` go through the same `load_policy`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from mmreason.config import ModelConfig

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint path that cannot be loaded as an image-text-to-text model."""


def resolve_dtype(name: str, device: torch.device | None = None) -> torch.dtype:
    """`auto` means bf16 where a GPU supports it, fp32 otherwise (CPU training is fp32)."""
    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def resolve_attn_implementation(name: str) -> str:
    """`auto` picks flash_attention_2 on a GPU when the package is installed, else sdpa."""
    if name != "auto":
        return name
    if torch.cuda.is_available():
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


def _check_checkpoint(path: str) -> None:
    """Fail early, naming the path, for a missing directory or a non image-text-to-text config."""
    local = Path(path)
    looks_local = local.exists() or path.startswith(("/", ".", "~")) or path.count("/") != 1
    if not looks_local:
        return  # a hub id: transformers reports its own errors
    if not local.is_dir():
        raise CheckpointError(f"model.path {path!r}: no such checkpoint directory")
    config_file = local / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"model.path {path!r}: not a Hugging Face checkpoint (no config.json)")
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise CheckpointError(
            f"model.path {path!r}: model_type {model_type!r} is not an image-text-to-text model "
            "(expected e.g. qwen2_5_vl or qwen2_vl)"
        )
    AutoConfig.from_pretrained(path)


def load_processor(path: str, cfg: ModelConfig | None = None) -> Any:
    from transformers import AutoProcessor

    kwargs: dict[str, Any] = {}
    if cfg is not None and cfg.min_pixels is not None:
        kwargs["min_pixels"] = cfg.min_pixels
    if cfg is not None and cfg.max_pixels is not None:
        kwargs["max_pixels"] = cfg.max_pixels
    processor = AutoProcessor.from_pretrained(path, **kwargs)
    # Generation batches are left-padded so every prompt ends where generation starts.
    processor.tokenizer.padding_side = "left"
    return processor


def load_policy(cfg: ModelConfig, device: torch.device | str | None = None) -> tuple[torch.nn.Module, Any]:
    """Return (model, processor) for `cfg.path`, with dtype, attention, freezing applied."""
    from transformers import AutoModelForImageTextToText

    _check_checkpoint(cfg.path)
    dtype = resolve_dtype(cfg.dtype)
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            cfg.path, dtype=dtype, attn_implementation=resolve_attn_implementation(cfg.attn_implementation)
        )
    except (OSError, ValueError) as err:
        raise CheckpointError(f"model.path {cfg.path!r}: cannot load as an image-text-to-text model ({err})") from err
    processor = load_processor(cfg.path, cfg)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    freeze_vision(model, tower=cfg.freeze_vision, merger=cfg.freeze_merger)
    if cfg.lora:  # adapters only train (a peft PeftModel; mmreason/lora.py)
        from mmreason.lora import apply_lora

        model = apply_lora(model, cfg, vision=vision_tower(model))
    if device is not None:
        model.to(device)
    return model, processor


def vision_owner(model: Any) -> Any:
    """The module holding `visual` (Qwen2_5_VLModel / Qwen2VLModel), through a DeepSpeed engine's `.module` and a peft
    wrapper (a LoRA policy, or its adapters-disabled reference): its forward takes `mm_encoder_outputs`. The model
    itself when it has no vision tower."""
    module = getattr(model, "module", model)
    if hasattr(module, "get_base_model"):  # a peft (LoRA) policy: the model under the adapters
        module = module.get_base_model()
    inner = getattr(module, "model", module)
    return inner if getattr(inner, "visual", None) is not None else module


def blank_image(visual: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixel_values [merge unit, D], grid [1, 3]): the smallest image the tower takes (2x2 patches), all zeros."""
    cfg = visual.config
    patch_dim = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size ** 2
    merge = int(getattr(cfg, "spatial_merge_size", 2))
    param = next(visual.parameters())
    return (torch.zeros(merge * merge, patch_dim, dtype=param.dtype, device=param.device),
            torch.tensor([[1, merge, merge]], device=param.device))


def vision_tower(model: Any, *, required: bool = True) -> torch.nn.Module | None:
    """The vision encoder (`visual`) of a Qwen2-VL / Qwen2.5-VL model (its location moved in transformers 5), through a
    DeepSpeed engine and a peft wrapper (`vision_owner`). Without one: CheckpointError, or None when not `required`."""
    visual = getattr(vision_owner(model), "visual", None)
    if visual is None and required:
        raise CheckpointError(f"{type(model).__name__} has no vision tower (`visual`) to freeze")
    return visual


def freeze_vision(model: torch.nn.Module, *, tower: bool, merger: bool) -> None:
    """Freeze the vision blocks and/or the patch merger (the projector into the language model)."""
    visual = vision_tower(model)
    merger_module = getattr(visual, "merger", None)
    merger_params = {id(p) for p in merger_module.parameters()} if merger_module is not None else set()
    for param in visual.parameters():
        is_merger = id(param) in merger_params
        if (is_merger and merger) or (not is_merger and tower):
            param.requires_grad_(False)


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
