"""A frozen vision tower's image features, computed once per image and reused (RL, `model.image_feature_cache_mib`).

Without it every forward re-encodes its images: the old log-probs, the reference log-probs, every update
micro-batch of every PPO epoch, once for each of a prompt's G samples. With the tower frozen its output for an
image never changes, so the RL loop encodes each image once (`encode_prompts`, right after the rollout) and every
forward of the step, and of later steps that draw the prompt again, reads it here.

What is cached is the tower's output *before* the patch merger, per image, in the natural patch order: the
real-scale setting trains the merger (`freeze_merger: false`), so the merger runs live in every forward, with
gradient when it trains (`image_features`). Qwen2.5-VL runs its blocks and the merger on window-permuted rows
and then reverses the permutation; the permutation moves whole groups of spatial_merge_size**2 rows and the merger
maps each such group to one token, so un-permuting the groups before the merger gives the same features.
The reference model has the same frozen tower (a copy of it, or the policy itself with LoRA adapters disabled),
so it reads the same cache and applies its own merger.

Collectives (ZeRO-3 gathers a partitioned module's weights in a forward hook: every rank must call the same
modules in the same order): the tower runs in one call per step on every rank, in `encode_prompts` (a rank with
nothing new to encode runs a blank image; no rank runs it if none has anything new); forwards with cached
features never touch the tower's blocks, and run the merger on every rank first thing, before the language model
(a blank ×0 term on a rank whose micro-batch has no image, `idle_merger_term`), whenever it trains or is
partitioned.

Caching is off when anything in the tower outside the merger trains (`freeze_vision: false`, or LoRA adapters on
the tower): `cacheable` decides. Entries live on the CPU, in the tower's dtype, evicted least recently used first
once their total passes the budget in MiB.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from typing import Any, Iterator, NamedTuple, Sequence

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from mmreason.distributed import all_reduce_max, is_partitioned
from mmreason.models import blank_image, vision_owner, vision_tower


def merge_unit(visual: torch.nn.Module) -> int:
    """Rows of the tower's output merged into one image token (spatial_merge_size ** 2)."""
    return int(getattr(visual.config, "spatial_merge_size", 2)) ** 2


def cacheable(model: Any) -> bool:
    """Whether `model`'s image features can be cached: it has a vision tower and nothing in it outside the patch
    merger trains (a trainable block, or a LoRA adapter on one, changes the features every step)."""
    visual = vision_tower(model, required=False)
    if visual is None or getattr(visual, "merger", None) is None:
        return False
    merger = {id(p) for p in visual.merger.parameters()}
    return not any(p.requires_grad for p in visual.parameters() if id(p) not in merger)


def image_keys(pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> list[str]:
    """One key per image of a prompt: a hash of its preprocessed patch rows and its grid. pixel_values
    [patches, D] (the prompt's images, concatenated), grid_thw [images, 3]."""
    keys, start = [], 0
    for grid in grid_thw.tolist():
        rows = int(grid[0] * grid[1] * grid[2])
        digest = hashlib.blake2b(digest_size=16)
        digest.update(str((grid, pixel_values.dtype, pixel_values.shape[1])).encode())
        digest.update(pixel_values[start : start + rows].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        keys.append(digest.hexdigest())
        start += rows
    return keys


class ImageFeatureCache:
    """Pre-merger tower outputs by image key, least recently used evicted first past `max_mib` MiB in total."""

    def __init__(self, max_mib: float):
        self.max_bytes = int(max_mib * 2**20)
        self._entries: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> torch.Tensor | None:
        """The entry (marked most recently used), or None; counted as a hit or a miss."""
        states = self._entries.get(key)
        if states is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return states

    def put(self, key: str, states: torch.Tensor) -> None:
        """Keep `states` (moved to the CPU), evicting least recently used entries to stay within the budget; an
        entry larger than the whole budget is not kept."""
        size = states.numel() * states.element_size()
        if key in self._entries or size > self.max_bytes:
            return
        while self._entries and self.bytes + size > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()
            self.evictions += 1
        self._entries[key] = states if states.device.type == "cpu" and not states.requires_grad else states.detach().cpu()
        self.bytes += size

    def stats(self) -> dict[str, float]:
        return {"vision_cache/mib": self.bytes / 2**20, "vision_cache/entries": float(len(self)),
                "vision_cache/hits": float(self.hits), "vision_cache/misses": float(self.misses),
                "vision_cache/evictions": float(self.evictions)}


def window_order(visual: torch.nn.Module, grid_thw: torch.Tensor) -> torch.Tensor | None:
    """[groups] the order of merge groups the tower's blocks (and merger) see: Qwen2.5-VL's window permutation over
    all images of the call, None for a tower without one (Qwen2-VL)."""
    if not hasattr(visual, "window_size"):
        return None
    from transformers.vision_utils import get_vision_window_index

    index, _ = get_vision_window_index(grid_thw, spatial_merge_size=visual.spatial_merge_size,
                                       window_size=visual.window_size, patch_size=visual.patch_size)
    return index


@torch.no_grad()
def tower_states(visual: torch.nn.Module, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> list[torch.Tensor]:
    """One tower call over several images: per image, its pre-merger states [patches_i, C] in natural patch order.
    pixel_values [sum patches, D], grid_thw [images, 3]."""
    device = next(visual.parameters()).device
    grid_thw = grid_thw.to(device)
    out = visual(pixel_values.to(device, visual.dtype), grid_thw=grid_thw)
    states = out.last_hidden_state  # [sum patches, C], in the order the merger saw
    order = window_order(visual, grid_thw)
    if order is not None:  # merge groups back to their natural order (what reverse_indices does after the merger)
        unit = merge_unit(visual)
        grouped = states.reshape(-1, unit, states.shape[-1])
        states = grouped[torch.argsort(order.to(device))].reshape(states.shape)
    return list(states.split(grid_thw.prod(dim=1).tolist()))


def encode_prompts(cache: ImageFeatureCache, model: Any, pixel_values: Sequence[torch.Tensor | None],
                   grid_thw: Sequence[torch.Tensor | None]) -> list[list[torch.Tensor] | None]:
    """Per prompt, the pre-merger states of each of its images (None for a text-only prompt): from the cache, the
    images it lacks encoded in one tower call. Collective when the tower is partitioned (ZeRO-3): every rank calls
    this together; if any rank has an image to encode, every rank runs the tower once (a blank image where it has
    none)."""
    visual = vision_tower(model, required=False)
    keys = [image_keys(p, g) if p is not None else None for p, g in zip(pixel_values, grid_thw)]
    found: dict[str, torch.Tensor] = {}
    todo: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for prompt_keys, pixels, grids in zip(keys, pixel_values, grid_thw):
        if prompt_keys is None:
            continue
        starts = [0] + grids.prod(dim=1).cumsum(0).tolist()
        for i, key in enumerate(prompt_keys):
            if key in found or key in todo:
                continue
            states = cache.get(key)
            if states is not None:
                found[key] = states
            else:
                todo[key] = (pixels[starts[i] : starts[i + 1]], grids[i : i + 1])
    partitioned = any(is_partitioned(p) for p in visual.parameters())
    anyone = all_reduce_max(float(bool(todo))) > 0 if partitioned else bool(todo)
    if todo:
        encoded = tower_states(visual, torch.cat([p for p, _ in todo.values()]), torch.cat([g for _, g in todo.values()]))
        for key, states in zip(todo, encoded):
            found[key] = states.cpu()
            cache.put(key, found[key])
    elif anyone:  # a peer encodes: run the same modules (ZeRO-3 gathers them with every rank)
        tower_states(visual, *blank_image(visual))
    return [None if prompt_keys is None else [found[k] for k in prompt_keys] for prompt_keys in keys]


class CachedImages(NamedTuple):
    """A forward's images as cached pre-merger states: each distinct image once, and which one each image slot of
    the batch is (a prompt's G rows repeat its images)."""

    states: list[torch.Tensor]  # distinct images: [patches_u, C] pre-merger states, natural order
    slots: list[int]  # per image of the batch, in order: its index into `states`
    grid_thw: torch.Tensor | None  # [images, 3] grids of the batch's images, in order; None when it has none


def batch_images(prompt_states: Sequence[list[torch.Tensor] | None], prompt_grids: Sequence[torch.Tensor | None],
                 row_prompts: Sequence[int]) -> CachedImages:
    """The cached images of a batch whose rows answer prompts `row_prompts` (indices into the per-prompt lists)."""
    states: list[torch.Tensor] = []
    first: dict[int, int] = {}  # prompt -> index of its first image in `states`
    slots: list[int] = []
    grids = []
    for prompt in row_prompts:
        if prompt_states[prompt] is None:
            continue
        if prompt not in first:
            first[prompt] = len(states)
            states += prompt_states[prompt]
        slots += range(first[prompt], first[prompt] + len(prompt_states[prompt]))
        grids.append(prompt_grids[prompt])
    return CachedImages(states, slots, torch.cat(grids) if grids else None)


def image_features(model: Any, images: CachedImages) -> tuple[torch.Tensor, ...]:
    """Per image slot of the batch, its features [tokens_i, hidden] as the model's merger makes them now (with
    gradient when the merger trains): the merger runs once over the distinct images."""
    visual = vision_tower(model, required=False)
    param = next(visual.merger.parameters())
    states = torch.cat(images.states).to(param.device, param.dtype)
    merged = visual.merger(states)  # [sum tokens_u, hidden]
    per_image = merged.split([s.shape[0] // merge_unit(visual) for s in images.states])
    return tuple(per_image[slot] for slot in images.slots)


def idle_merger_term(model: Any) -> torch.Tensor | None:
    """0 x (the merger over one blank merge group), or None when the merger neither trains nor is partitioned:
    what a rank whose micro-batch has no image runs so that its peers' merger calls (ZeRO-3 gathers) and
    gradient buckets (ZeRO-1/2) match (see logprobs.idle_vision_term, its uncached counterpart)."""
    visual = vision_tower(model, required=False)
    merger = getattr(visual, "merger", None)
    if merger is None:
        return None
    params = list(merger.parameters())
    if not any(p.requires_grad or is_partitioned(p) for p in params):
        return None
    unit = merge_unit(visual)
    blank = torch.zeros(unit, merger.hidden_size // unit, dtype=params[0].dtype, device=params[0].device)
    return merger(blank).float().sum() * 0.0


@contextlib.contextmanager
def merger_in_forward(model: Any, images: CachedImages) -> Iterator[None]:
    """Inside the block, a forward of `model` takes its images from `images`: the merger runs on the cached states
    at the start of the vision owner's forward (inside the model's forward, after ZeRO-3 has begun its step; on
    every rank at the same point, before the token embeddings), its features passed as `mm_encoder_outputs`. A
    batch without images runs `idle_merger_term` there instead, added to the token embeddings."""
    owner = vision_owner(model)
    idle: list[torch.Tensor] = []

    def features(_module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if images.grid_thw is not None:
            kwargs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=image_features(model, images))}
        else:
            term = idle_merger_term(model)
            idle[:] = [] if term is None else [term]
        return args, kwargs

    def add_idle(_module: Any, _args: Any, embeddings: torch.Tensor) -> torch.Tensor | None:
        return embeddings + idle[0].to(embeddings.dtype) if idle else None

    handles = [owner.register_forward_pre_hook(features, with_kwargs=True),
               owner.get_input_embeddings().register_forward_hook(add_idle)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
