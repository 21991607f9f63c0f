"""Forward passes that turn a policy and token ids into per-token log-probabilities."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def vision_tower(model: Any) -> torch.nn.Module | None:
    """The policy's vision tower (`visual`), through a DeepSpeed engine's `.module` if there is one; None if it has none."""
    module = getattr(model, "module", model)
    inner = getattr(module, "model", module)
    return getattr(inner, "visual", None) or getattr(module, "visual", None)


def _is_partitioned(param: torch.nn.Parameter) -> bool:
    return hasattr(param, "ds_id")  # DeepSpeed ZeRO-3 marks the parameters it partitions


def idle_vision_term(model: Any) -> torch.Tensor | None:
    """0 x (a 2x2-patch blank image through the vision tower), or None when no such pass is needed.

    Why: when one rank's micro-batch has no image, its forward never touches the vision tower. Under ZeRO-3 the
    other ranks then wait forever for it to gather the tower's partitioned parameters; under ZeRO-1/2 a trainable
    tower or merger gets no gradient on that rank and the gradient all-reduce fails on mismatched bucket sizes. A
    blank image whose output is multiplied by 0 makes every rank run the same modules and produce (zero) gradients
    for every trainable parameter, without changing the loss.
    """
    visual = vision_tower(model)
    if visual is None:
        return None
    params = list(visual.parameters())
    if not any(p.requires_grad or _is_partitioned(p) for p in params):
        return None
    cfg = visual.config
    patch_dim = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size ** 2
    merge = getattr(cfg, "spatial_merge_size", 2)
    pixels = torch.zeros(merge * merge, patch_dim, dtype=params[0].dtype, device=params[0].device)
    grid = torch.tensor([[1, merge, merge]], device=params[0].device)
    out = visual(pixels, grid_thw=grid)
    hidden = [t for t in (getattr(out, "last_hidden_state", None), getattr(out, "pooler_output", None)) if t is not None]
    if not hidden:  # older transformers return the merged features as a plain tensor
        hidden = [out]
    return sum(t.float().sum() for t in hidden) * 0.0


def forward_logits(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   pixel_values: torch.Tensor | None = None, image_grid_thw: torch.Tensor | None = None) -> torch.Tensor:
    """[b, T] ids -> [b, T, V] logits (fp32), images included when given.

    A batch without images still runs the vision tower on a blank image when training or ZeRO-3 needs every rank
    to (see `idle_vision_term`); the logits are unchanged. The blank pass is added to the token embeddings right
    after they are computed: where an image batch runs the tower, so every rank gathers (ZeRO-3) and reduces
    gradients for the same modules in the same order, forward and backward.
    """
    inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": False}
    if pixel_values is not None:
        inputs.update(pixel_values=pixel_values, image_grid_thw=image_grid_thw)
        return model(**inputs).logits.float()

    def add_idle_vision(_module: Any, _args: Any, embeddings: torch.Tensor) -> torch.Tensor | None:
        idle = idle_vision_term(model)
        return None if idle is None else embeddings + idle.to(embeddings.dtype)

    embed_tokens = getattr(model, "module", model).get_input_embeddings()
    handle = embed_tokens.register_forward_hook(add_idle_vision)
    try:
        return model(**inputs).logits.float()
    finally:
        handle.remove()


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(targets) under logits: [b, L, V], [b, L] -> [b, L] (log_softmax gathered, memory-light)."""
    return -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")


def shifted_cross_entropy_sum(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Sum of next-token cross entropy over labelled positions: logits [b, T, V], labels [b, T] -> scalar."""
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=ignore_index, reduction="sum")
