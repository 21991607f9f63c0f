"""Rollouts: G sampled responses per prompt, as one typed record.

Generation itself goes through an engine (`mmreason.engines`: hf or vllm,
behind `mmreason.generation.Engine`). This module turns its output into what
the update needs: responses cut at degenerate repetition, decoded texts, each
row's images, the engine's own log-probs when it has them (for the
`rollout/logprob_diff` check), and (filled later by the loop) old and
reference log-probs.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import torch

from mmreason.config import RolloutConfig
from mmreason.data.batching import encode_prompts
from mmreason.generation import Engine, decode_responses, encode, eos_token_ids, generate
from mmreason.problem import Problem
from mmreason.rl.repetition import find_degenerate_repetition


class Rollout(NamedTuple):
    prompt_ids: torch.Tensor  # [N, P] left padded; N = prompts * G, a prompt's G rows adjacent
    prompt_mask: torch.Tensor  # [N, P]
    response_ids: torch.Tensor  # [N, L] right padded
    response_mask: torch.Tensor  # [N, L] 1 on response tokens (up to and including EOS)
    truncated: torch.Tensor  # [N] bool: no EOS within max_new_tokens
    repetitive: torch.Tensor  # [N] bool: cut at degenerate repetition
    texts: list[str]  # N decoded responses (special tokens such as <think> kept)
    prompt_index: torch.Tensor  # [N] index into `problems` of the prompt each row answers
    problems: list[Problem]  # the prompts, in order
    pixel_values: list[torch.Tensor | None]  # per prompt: [patches_i, D] or None for text-only
    image_grid_thw: list[torch.Tensor | None]  # per prompt: [images_i, 3] or None
    engine_logprobs: torch.Tensor | None = None  # [N, L] the engine's log-prob of each sampled token; None (hf) = not kept

    @property
    def num_rows(self) -> int:
        return self.response_ids.shape[0]

    def row_problems(self) -> list[Problem]:
        return [self.problems[i] for i in self.prompt_index.tolist()]

    def response_lengths(self) -> torch.Tensor:  # [N]
        return self.response_mask.sum(dim=1)

    def model_inputs(self, rows: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """Inputs for a forward pass over prompt+response of `rows` ([b] indices)."""
        prompts = self.prompt_index[rows].tolist()
        pixels = [self.pixel_values[i] for i in prompts if self.pixel_values[i] is not None]
        grids = [self.image_grid_thw[i] for i in prompts if self.image_grid_thw[i] is not None]
        return {
            "input_ids": torch.cat([self.prompt_ids[rows], self.response_ids[rows]], dim=1),
            "attention_mask": torch.cat([self.prompt_mask[rows], self.response_mask[rows]], dim=1),
            "pixel_values": torch.cat(pixels) if pixels else None,
            "image_grid_thw": torch.cat(grids) if grids else None,
        }


def split_vision_per_prompt(problems: Sequence[Problem], pixel_values: torch.Tensor | None,
                            image_grid_thw: torch.Tensor | None) -> tuple[list, list]:
    """Cut a batch's concatenated image patches back into one slice per prompt."""
    pixels, grids = [], []
    image_cursor, patch_cursor = 0, 0
    for problem in problems:
        n = len(problem.images)
        if n == 0:
            pixels.append(None)
            grids.append(None)
            continue
        grid = image_grid_thw[image_cursor : image_cursor + n]
        patches = int(grid.prod(dim=1).sum())
        pixels.append(pixel_values[patch_cursor : patch_cursor + patches])
        grids.append(grid)
        image_cursor += n
        patch_cursor += patches
    return pixels, grids


def cut_repetition(response_ids: torch.Tensor, response_mask: torch.Tensor, cfg: RolloutConfig,
                   pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """End responses at degenerate repetition (the tokens after the cut are masked out)."""
    repetitive = torch.zeros(response_ids.shape[0], dtype=torch.bool)
    if cfg.repetition_count == 0:
        return response_ids, response_mask, repetitive
    response_ids, response_mask = response_ids.clone(), response_mask.clone()
    for row in range(response_ids.shape[0]):
        length = int(response_mask[row].sum())
        cut = find_degenerate_repetition(response_ids[row, :length].tolist(), cfg.repetition_ngram, cfg.repetition_count)
        if cut is not None and cut < length:
            response_mask[row, cut:] = 0
            response_ids[row, cut:] = pad_id
            repetitive[row] = True
    return response_ids, response_mask, repetitive


def _pad_left(t: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return torch.nn.functional.pad(t, (width - t.shape[1], 0), value=value)


def _pad_right(t: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)


def generate_rollouts(model: Any, processor: Any, problems: Sequence[Problem], cfg: RolloutConfig, *, template: str,
                      system_prompt: str | None = None, min_pixels: int | None = None, max_pixels: int | None = None,
                      synced_gpus: bool = False, engine: Engine | None = None) -> Rollout:
    """cfg.group_size samples for each of `problems`, generated cfg.generation_batch_size rows at a time.

    `engine` None samples with transformers' `generate` on `model`; another engine (mmreason.engines.build_engine)
    must already hold `model`'s weights (`engine.sync_weights(model)` after every update).
    """
    pad_id = processor.tokenizer.pad_token_id
    eos = eos_token_ids(model, processor)
    prompts_per_call = max(1, cfg.generation_batch_size // cfg.group_size)
    parts = []
    for start in range(0, len(problems), prompts_per_call):
        chunk = list(problems[start : start + prompts_per_call])
        if engine is None:
            batch = encode_prompts(processor, chunk, template, system_prompt=system_prompt, min_pixels=min_pixels,
                                   max_pixels=max_pixels)
            out = generate(model, processor, batch, num_samples=cfg.group_size, temperature=cfg.temperature,
                           top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, synced_gpus=synced_gpus)
        else:
            prompts = encode(processor, chunk, template, system_prompt=system_prompt, min_pixels=min_pixels,
                             max_pixels=max_pixels, with_images=engine.needs_images)
            batch = prompts.batch
            out = engine.generate(model, processor, prompts, num_samples=cfg.group_size, temperature=cfg.temperature,
                                  top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, synced_gpus=synced_gpus)
        response_ids, response_mask, repetitive = cut_repetition(out.response_ids, out.response_mask, cfg, pad_id)
        pixels, grids = split_vision_per_prompt(chunk, batch.pixel_values, batch.image_grid_thw)
        parts.append(Rollout(
            prompt_ids=out.prompt_ids, prompt_mask=out.prompt_mask,
            response_ids=response_ids, response_mask=response_mask,
            truncated=out.truncated, repetitive=repetitive,
            texts=decode_responses(processor, response_ids, response_mask, eos),
            prompt_index=torch.arange(len(chunk)).repeat_interleave(cfg.group_size),
            problems=chunk, pixel_values=pixels, image_grid_thw=grids,
            engine_logprobs=None if out.logprobs is None else out.logprobs * response_mask,
        ))
    return concat_rollouts(parts, pad_id)


def select_prompts(rollout: Rollout, keep: Sequence[int], group_size: int) -> Rollout:
    """The sub-rollout holding only prompts `keep` (indices into rollout.problems), re-indexed."""
    rows = torch.cat([torch.arange(i * group_size, (i + 1) * group_size) for i in keep]) if keep else torch.zeros(0, dtype=torch.long)
    return Rollout(
        prompt_ids=rollout.prompt_ids[rows], prompt_mask=rollout.prompt_mask[rows],
        response_ids=rollout.response_ids[rows], response_mask=rollout.response_mask[rows],
        truncated=rollout.truncated[rows], repetitive=rollout.repetitive[rows],
        texts=[rollout.texts[r] for r in rows.tolist()],
        prompt_index=torch.arange(len(keep)).repeat_interleave(group_size),
        problems=[rollout.problems[i] for i in keep],
        pixel_values=[rollout.pixel_values[i] for i in keep], image_grid_thw=[rollout.image_grid_thw[i] for i in keep],
        engine_logprobs=None if rollout.engine_logprobs is None else rollout.engine_logprobs[rows],
    )


def concat_rollouts(parts: Sequence[Rollout], pad_id: int) -> Rollout:
    """Join rollouts (e.g. DAPO's extra sampling rounds), padding prompts left and responses right."""
    parts = [p for p in parts if p.num_rows]
    prompt_width = max(p.prompt_ids.shape[1] for p in parts)
    response_width = max(p.response_ids.shape[1] for p in parts)
    offsets = [0]
    for p in parts[:-1]:
        offsets.append(offsets[-1] + len(p.problems))
    return Rollout(
        prompt_ids=torch.cat([_pad_left(p.prompt_ids, prompt_width, pad_id) for p in parts]),
        prompt_mask=torch.cat([_pad_left(p.prompt_mask, prompt_width, 0) for p in parts]),
        response_ids=torch.cat([_pad_right(p.response_ids, response_width, pad_id) for p in parts]),
        response_mask=torch.cat([_pad_right(p.response_mask, response_width, 0) for p in parts]),
        truncated=torch.cat([p.truncated for p in parts]),
        repetitive=torch.cat([p.repetitive for p in parts]),
        texts=[t for p in parts for t in p.texts],
        prompt_index=torch.cat([p.prompt_index + off for p, off in zip(parts, offsets)]),
        problems=[q for p in parts for q in p.problems],
        pixel_values=[x for p in parts for x in p.pixel_values],
        image_grid_thw=[x for p in parts for x in p.image_grid_thw],
        engine_logprobs=(torch.cat([_pad_right(p.engine_logprobs, response_width, 0) for p in parts])
                         if all(p.engine_logprobs is not None for p in parts) else None),
    )
