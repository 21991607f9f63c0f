"""Batched sampling from a policy: the one generation interface every caller goes through.

RL rollouts, rejection sampling, curation and evaluation call `generate_samples`
(texts with generated-token counts), `generate_texts` (texts only) or, for RL,
`mmreason.rl.rollout.generate_rollouts`; each takes an optional `engine`. An
engine (see `Engine` below and `mmreason/engines/`) turns encoded prompts into
a `Generation`; `hf` is transformers' `generate` on the live policy (the
default, and what `generate` here runs), `vllm` a colocated vLLM engine holding
its own copy of the weights. Nothing above this interface knows which one runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import torch
from mmreason.metrics import progress_bar  # tqdm on a terminal, plain lines in a log file

from mmreason.data.batching import PromptBatch, encode_prompts
from mmreason.data.prompts import build_messages
from mmreason.logprobs import mm_token_type_ids
from mmreason.problem import Problem


class Generation(NamedTuple):
    prompt_ids: torch.Tensor  # [N, P] left padded; N = prompts * num_samples, a prompt's samples adjacent
    prompt_mask: torch.Tensor  # [N, P]
    response_ids: torch.Tensor  # [N, L] right padded with the pad id after the first EOS
    response_mask: torch.Tensor  # [N, L] 1 on response tokens up to and including the first EOS
    truncated: torch.Tensor  # [N] bool: reached max_new_tokens without an EOS
    logprobs: torch.Tensor | None = None  # [N, L] the engine's log-prob of each sampled token, 0 off the mask; None from hf


class Prompts(NamedTuple):
    """Encoded prompts as an engine takes them: the processor's tensors and, for engines that run their own
    image processing (vllm), the images as the processor saw them."""

    batch: PromptBatch  # input_ids [B, P] left padded, with the processor's expanded image tokens; pixel_values
    images: list[list[Any]] | None  # per prompt, its PIL images after qwen-vl-utils' resize ([] if none); None if not asked


class Engine(Protocol):
    """What every generation engine provides (mmreason/engines/: hf, vllm)."""

    name: str
    needs_images: bool  # True: `generate` reads Prompts.images (the engine runs its own image processor)

    def generate(self, model: Any, processor: Any, prompts: Prompts, *, num_samples: int = 1, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int = 256, synced_gpus: bool = False,
                 min_new_tokens: int = 0) -> Generation:
        """`num_samples` responses per prompt, a prompt's samples adjacent (greedy when temperature == 0);
        no EOS before `min_new_tokens` (benchmarks force lengths with it)."""

    def sync_weights(self, model: Any) -> None:
        """Make the engine sample from `model`'s current weights (a no-op for engines that use the live model)."""

    def sleep(self) -> None:
        """Free what the engine holds on the accelerator while the trainer updates (no-op where unsupported)."""

    def wake(self) -> None:
        """Undo `sleep` before the next `sync_weights` / `generate`."""

    def close(self) -> None:
        """Release the engine (processes, memory)."""


def eos_token_ids(model: Any, processor: Any) -> list[int]:
    eos = model.generation_config.eos_token_id
    ids = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    if im_end is not None and im_end not in ids:
        ids.append(im_end)
    return ids


VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")


def vision_token_ids(processor: Any) -> list[int]:
    """Ids a response must never contain: a sampled <|image_pad|> would claim image features that do not exist."""
    unk = processor.tokenizer.unk_token_id
    ids = [processor.tokenizer.convert_tokens_to_ids(token) for token in VISION_TOKENS]
    return [i for i in ids if i is not None and i != unk]


def response_mask_from_ids(response_ids: torch.Tensor, eos_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, L] ids -> (mask [N, L] keeping tokens up to and including the first EOS, truncated [N])."""
    is_eos = torch.isin(response_ids, torch.tensor(list(eos_ids), device=response_ids.device))
    # Tokens strictly after the first EOS have a positive count of EOS before them.
    eos_before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()
    mask = (eos_before == 0).long()
    truncated = ~is_eos.any(dim=1)
    return mask, truncated


@torch.no_grad()
def generate(
    model: Any,
    processor: Any,
    batch: PromptBatch,
    *,
    num_samples: int = 1,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    synced_gpus: bool = False,
    min_new_tokens: int = 0,
) -> Generation:
    """Sample `num_samples` responses per prompt (greedy when temperature == 0); EOS is barred before `min_new_tokens`."""
    device = next(model.parameters()).device
    inputs = {"input_ids": batch.input_ids.to(device), "attention_mask": batch.attention_mask.to(device)}
    inputs.update({k: v.to(device) for k, v in batch.vision_inputs().items()})
    if batch.pixel_values is not None and (types := mm_token_type_ids(model, inputs["input_ids"])) is not None:
        inputs["mm_token_type_ids"] = types  # 3-D rope positions for image tokens (see mm_token_type_ids)
    eos_ids = eos_token_ids(model, processor)
    pad_id = processor.tokenizer.pad_token_id
    sampling = temperature > 0
    was_training = model.training
    model.eval()
    output = model.generate(
        **inputs,
        do_sample=sampling,
        temperature=temperature if sampling else None,
        top_p=top_p if sampling else None,
        top_k=None,
        max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens or None,
        num_return_sequences=num_samples,
        eos_token_id=eos_ids,
        pad_token_id=pad_id,
        use_cache=True,
        synced_gpus=synced_gpus,
        suppress_tokens=vision_token_ids(processor),
    )
    model.train(was_training)
    prompt_len = batch.input_ids.shape[1]
    response_ids = output[:, prompt_len:].cpu()
    response_mask, truncated = response_mask_from_ids(response_ids, eos_ids)
    response_ids = response_ids.masked_fill(response_mask == 0, pad_id)
    return Generation(
        prompt_ids=batch.input_ids.repeat_interleave(num_samples, dim=0),
        prompt_mask=batch.attention_mask.repeat_interleave(num_samples, dim=0),
        response_ids=response_ids,
        response_mask=response_mask,
        truncated=truncated,
    )


def prompt_images(problem: Problem, template: str, *, system_prompt: str | None = None, min_pixels: int | None = None,
                  max_pixels: int | None = None) -> list[Any]:
    """`problem`'s images in prompt order, resized exactly as `encode_prompts` resizes them (qwen-vl-utils)."""
    if not problem.images:
        return []
    from qwen_vl_utils import process_vision_info

    messages = build_messages(problem, template, system_prompt=system_prompt, min_pixels=min_pixels, max_pixels=max_pixels)
    images, _videos = process_vision_info([messages])
    return list(images or [])


def encode(processor: Any, problems: Sequence[Problem], template: str, *, system_prompt: str | None = None,
           response_prefix: str = "", min_pixels: int | None = None, max_pixels: int | None = None,
           with_images: bool = False) -> Prompts:
    """`encode_prompts` plus, when `with_images`, each prompt's resized images for engines that need them."""
    batch = encode_prompts(processor, problems, template, system_prompt=system_prompt, response_prefix=response_prefix,
                           min_pixels=min_pixels, max_pixels=max_pixels)
    images = None
    if with_images:
        images = [prompt_images(p, template, system_prompt=system_prompt, min_pixels=min_pixels, max_pixels=max_pixels)
                  for p in problems]
    return Prompts(batch, images)


def decode_responses(processor: Any, response_ids: torch.Tensor, response_mask: torch.Tensor, eos_ids: Sequence[int]) -> list[str]:
    """Response texts without EOS/padding, keeping special tokens such as <think> that rewards read."""
    texts = []
    for ids, mask in zip(response_ids, response_mask):
        kept = [t for t in ids[mask.bool()].tolist() if t not in eos_ids]
        texts.append(processor.tokenizer.decode(kept, skip_special_tokens=False))
    return texts


class SampledText(NamedTuple):
    text: str  # the response (response_prefix included), special tokens such as <think> kept
    num_tokens: int  # tokens generated for it, end-of-turn token included (as RL's response_length)


def generate_samples(
    model: Any,
    processor: Any,
    problems: Sequence[Problem],
    *,
    template: str,
    num_samples: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    system_prompt: str | None = None,
    response_prefix: str = "",
    progress: bool = False,
    engine: Engine | None = None,
) -> list[list[SampledText]]:
    """`num_samples` responses per problem (in input order), generated `batch_size` prompts at a time.

    Lengths come from the generation itself: re-tokenizing decoded text counts differently
    whenever a response holds partial UTF-8 bytes. `response_prefix` pre-fills the assistant
    turn (e.g. "<think>\\n</think>\\n" to ask for an answer with no chain of thought).
    `engine` None is transformers' `generate` on `model`; any other engine (mmreason.engines)
    samples in its place and must already hold `model`'s weights (`engine.sync_weights(model)`).
    """
    eos = eos_token_ids(model, processor)
    results: list[list[SampledText]] = []
    bar = progress_bar(total=len(problems), desc="generate", unit="problem", disable=not progress, leave=False)
    for start in range(0, len(problems), batch_size):
        chunk = problems[start : start + batch_size]
        if engine is None:
            batch = encode_prompts(processor, chunk, template, system_prompt=system_prompt, response_prefix=response_prefix)
            out = generate(
                model, processor, batch, num_samples=num_samples, temperature=temperature, top_p=top_p,
                max_new_tokens=max_new_tokens,
            )
        else:
            prompts = encode(processor, chunk, template, system_prompt=system_prompt, response_prefix=response_prefix,
                             with_images=engine.needs_images)
            out = engine.generate(model, processor, prompts, num_samples=num_samples, temperature=temperature,
                                  top_p=top_p, max_new_tokens=max_new_tokens)
        texts = decode_responses(processor, out.response_ids, out.response_mask, eos)  # [len(chunk) * k], samples adjacent
        lengths = out.response_mask.sum(dim=1).tolist()
        for i in range(len(chunk)):
            rows = range(i * num_samples, (i + 1) * num_samples)
            results.append([SampledText(response_prefix + texts[r], int(lengths[r])) for r in rows])
        bar.update(len(chunk))
    bar.close()
    return results


def generate_texts(model: Any, processor: Any, problems: Sequence[Problem], **kwargs: Any) -> list[list[str]]:
    """`generate_samples` without the lengths: `num_samples` response texts per problem."""
    return [[sample.text for sample in samples] for samples in generate_samples(model, processor, problems, **kwargs)]
