"""Forward passes that turn a policy and token ids into per-token log-probabilities.

Memory: a response of L tokens over a vocabulary of V needs [b, L, V] logits; at V = 152k, L = 8k, b = 4 that is
20 GB in fp32. `response_logprobs` never builds it: the policy returns its last hidden states, and the output
head, the fp32 softmax and the entropy run one chunk of positions at a time on the device, each chunk
recomputed in backward instead of kept (torchtune's chunked output loss is the model).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from mmreason.distributed import gathered, is_partitioned
from mmreason.models import blank_image, vision_tower

if TYPE_CHECKING:
    from mmreason.vision_cache import CachedImages


def idle_vision_term(model: Any) -> torch.Tensor | None:
    """0 x (a 2x2-patch blank image through the vision tower), or None when no such pass is needed.

    Why: when one rank's micro-batch has no image, its forward never touches the vision tower. Under ZeRO-3 the
    other ranks then wait forever for it to gather the tower's partitioned parameters; under ZeRO-1/2 a trainable
    tower or merger gets no gradient on that rank and the gradient all-reduce fails on mismatched bucket sizes. A
    blank image whose output is multiplied by 0 makes every rank run the same modules and produce (zero) gradients
    for every trainable parameter, without changing the loss.
    """
    visual = vision_tower(model, required=False)
    if visual is None:
        return None
    params = list(visual.parameters())
    if not any(p.requires_grad or is_partitioned(p) for p in params):
        return None
    pixels, grid = blank_image(visual)
    out = visual(pixels, grid_thw=grid)
    # The merged features only, as an image batch uses them: every trainable vision parameter is behind them, and
    # using a second output would make ZeRO-3 record the tower twice in this rank's backward (a trace mismatch).
    merged = getattr(out, "pooler_output", out)  # older transformers return the merged features as a tensor
    return merged.float().sum() * 0.0


def mm_token_type_ids(model: Any, input_ids: torch.Tensor) -> torch.Tensor | None:
    """[b, T] ids -> [b, T] modality of each token (0 text, 1 image, 2 video), as the processor reports it; None
    for a model without vision tokens.

    Why: transformers (>= 5.19) gives Qwen2-VL / Qwen2.5-VL their multimodal (3-D) rope positions only when a
    forward or `generate` gets this tensor; without it image tokens silently get plain text positions, which a
    pretrained checkpoint never saw. It is a function of the ids, so it is derived here for every forward and
    every generation instead of being carried through batches, rollouts and partial-rollout continuations.
    """
    config = getattr(getattr(model, "module", model), "config", None)
    image_id = getattr(config, "image_token_id", None)
    if image_id is None:
        return None
    types = (input_ids == image_id).int()
    video_id = getattr(config, "video_token_id", None)
    if video_id is not None:
        types = types.masked_fill(input_ids == video_id, 2)
    return types


def policy_forward(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   pixel_values: torch.Tensor | None = None, image_grid_thw: torch.Tensor | None = None,
                   cached_images: "CachedImages | None" = None, **kwargs: Any) -> Any:
    """The policy's forward (its HF output), images included when given.

    A batch without images still runs the vision tower on a blank image when training or ZeRO-3 needs every rank
    to (see `idle_vision_term`); the outputs are unchanged. The blank pass is added to the token embeddings right
    after they are computed: where an image batch runs the tower, so every rank gathers (ZeRO-3) and reduces
    gradients for the same modules in the same order, forward and backward.

    `cached_images` (mmreason/vision_cache.py; then no pixel_values): the images as the frozen tower's cached
    pre-merger states. The tower's blocks are not run; the merger is, on every rank that needs it (a blank x0 term
    when the batch has no image), see `vision_cache.merger_in_forward`.
    """
    inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": False, **kwargs}
    if cached_images is not None:
        from mmreason.vision_cache import merger_in_forward

        if pixel_values is not None:
            raise ValueError("policy_forward: pass pixel_values or cached_images, not both")
        if cached_images.grid_thw is not None:
            inputs.update(image_grid_thw=cached_images.grid_thw.to(input_ids.device),
                          mm_token_type_ids=mm_token_type_ids(model, input_ids))
        with merger_in_forward(model, cached_images):
            return model(**inputs)
    if pixel_values is not None:
        inputs.update(pixel_values=pixel_values, image_grid_thw=image_grid_thw)
        types = mm_token_type_ids(model, input_ids)
        if types is not None:
            inputs["mm_token_type_ids"] = types
        return model(**inputs)

    def add_idle_vision(_module: Any, _args: Any, embeddings: torch.Tensor) -> torch.Tensor | None:
        idle = idle_vision_term(model)
        return None if idle is None else embeddings + idle.to(embeddings.dtype)

    embed_tokens = getattr(model, "module", model).get_input_embeddings()
    handle = embed_tokens.register_forward_hook(add_idle_vision)
    try:
        return model(**inputs)
    finally:
        handle.remove()


def forward_logits(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   pixel_values: torch.Tensor | None = None, image_grid_thw: torch.Tensor | None = None) -> torch.Tensor:
    """[b, T] ids -> [b, T, V] logits (fp32), images included when given (see `policy_forward`)."""
    return policy_forward(model, input_ids, attention_mask, pixel_values, image_grid_thw).logits.float()


def token_entropy(logits: torch.Tensor, mask: torch.Tensor, chunk_size: int = 1024) -> torch.Tensor:
    """Mean entropy (nats) of the next-token distribution over response tokens: logits [b, L, V], mask [b, L] -> scalar.

    A metric, computed without gradient. Only masked positions are read, a
    chunk of `chunk_size` positions at a time, so the float32 softmax never
    exists for the whole [b, L, V] block.
    """
    if logits.dim() != 3 or mask.shape != logits.shape[:2]:
        raise ValueError(f"token_entropy: expected logits [b, L, V] and mask [b, L], got {tuple(logits.shape)} and {tuple(mask.shape)}")
    with torch.no_grad():
        rows = logits.reshape(-1, logits.shape[-1])
        positions = mask.reshape(-1).bool().nonzero().squeeze(1)
        total = torch.zeros((), dtype=torch.float32, device=logits.device)
        for chunk in positions.split(chunk_size):
            log_probs = torch.log_softmax(rows[chunk].float(), dim=-1)  # [c, V]
            probs = log_probs.exp()
            total += -torch.special.xlogy(probs, probs).sum()  # 0 log 0 = 0 for tokens masked to -inf
        return total / max(positions.numel(), 1)


class ResponseLogprobs(NamedTuple):
    logprobs: torch.Tensor
    """[b, L] float32 log-probs of the response tokens (carries the gradient when grad is on)."""
    entropy_sum: torch.Tensor
    """Scalar float32: summed next-token entropy over the response tokens `mask` keeps (no gradient; a metric)."""


def _chunk_logits(head: Any, hidden: torch.Tensor, temperature: float, suppressed: torch.Tensor | None) -> torch.Tensor:
    """[b, c, H] hidden states -> [b, c, V] fp32 logits / temperature, with `suppressed` token ids at -inf."""
    logits = head(hidden).float() / temperature
    if suppressed is not None:
        logits = logits.index_fill(-1, suppressed, float("-inf"))
    return logits


def _chunk_logprobs(head: Any, hidden: torch.Tensor, targets: torch.Tensor, temperature: float,
                    suppressed: torch.Tensor | None) -> torch.Tensor:
    """[b, c, H] hidden states -> [b, c] log-probs of `targets` under the sampling distribution, in fp32."""
    logits = _chunk_logits(head, hidden, temperature, suppressed)
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def frozen_head_copy(head: torch.nn.Module) -> Any:
    """`head`, or for a frozen head under ZeRO-3 (LoRA) a plain linear map over a gathered copy of its weight.

    Why: a chunk's recomputation in backward calls the head again; ZeRO-3 gathers a frozen module's weight for
    that call and releases it right after, before autograd reads it (torch.utils.checkpoint then fails with
    "Recomputed values ... have different metadata"). A trainable head is held gathered through its backward.
    The copy (vocabulary x hidden) lives until the micro-batch's backward; gathering is a collective, taken once
    per call on every rank.
    """
    params = list(head.parameters())
    if not params or any(p.requires_grad for p in params) or not any(is_partitioned(p) for p in params):
        return head
    with gathered(params):
        weight = head.weight.detach().clone()
        bias = head.bias.detach().clone() if getattr(head, "bias", None) is not None else None
    return functools.partial(F.linear, weight=weight, bias=bias)


def response_logprobs(model: Any, inputs: dict[str, Any], response_ids: torch.Tensor, mask: torch.Tensor, *,
                      temperature: float = 1.0, chunk_tokens: int = 512,
                      suppressed_ids: Sequence[int] = ()) -> ResponseLogprobs:
    """Log-probs of the last L = response_ids.shape[1] tokens of `inputs` (prompt + response, responses right
    padded) under `model`, logits divided by `temperature`, with their entropy summed over `mask` [b, L].

    `suppressed_ids` are tokens the sampler never draws (vision tokens): they get probability 0 here too, so the
    log-probs are those of the distribution that actually sampled.

    The output head runs on at most `chunk_tokens` positions at a time; with gradient on, each chunk is
    recomputed in backward (activation checkpointing), so no [b, L, V] tensor is ever held.
    """
    out = policy_forward(model, **inputs, output_hidden_states=True, logits_to_keep=1)
    hidden = out.hidden_states[-1]  # [b, T, H], after the final norm
    b, L = response_ids.shape
    hidden = hidden[:, hidden.shape[1] - L - 1 : -1]  # position t predicts token t + 1
    head = frozen_head_copy(getattr(model, "module", model).get_output_embeddings())
    temperature = max(temperature, 1e-6)
    targets = response_ids.to(hidden.device)
    mask = mask.to(hidden.device).bool()
    suppressed = torch.tensor(list(suppressed_ids), device=hidden.device, dtype=torch.long) if suppressed_ids else None
    step = max(1, chunk_tokens // max(b, 1))
    parts, entropy_sum = [], torch.zeros((), dtype=torch.float32, device=hidden.device)
    for start in range(0, L, step):
        h, t = hidden[:, start : start + step], targets[:, start : start + step]
        if torch.is_grad_enabled() and h.requires_grad:
            parts.append(checkpoint(_chunk_logprobs, head, h, t, temperature, suppressed, use_reentrant=False))
        else:
            parts.append(_chunk_logprobs(head, h, t, temperature, suppressed))
        with torch.no_grad():
            chunk_mask = mask[:, start : start + step]
            entropy_sum += token_entropy(_chunk_logits(head, h.detach(), temperature, suppressed), chunk_mask) * chunk_mask.sum()
    return ResponseLogprobs(torch.cat(parts, dim=1) if parts else hidden.new_zeros(b, 0, dtype=torch.float32), entropy_sum)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(targets) under logits: [b, L, V], [b, L] -> [b, L] (log_softmax gathered, memory-light)."""
    return -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")


def shifted_cross_entropy_sum(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Sum of next-token cross entropy over labelled positions: logits [b, T, V], labels [b, T] -> scalar."""
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=ignore_index, reduction="sum")
