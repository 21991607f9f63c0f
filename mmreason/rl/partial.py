"""Kimi k1.5 partial rollouts: a per-iteration token budget, a replay buffer of unfinished groups, continuation by
the current policy.

Every trajectory grows by at most `rollout.partial_segment_tokens` tokens per generation round. A group (a prompt's G
samples, which always travel together so group-relative advantages stay defined) whose samples have not all ended is
put, unfinished, in a replay buffer and continued in a later round or step by the then-current policy: the engine gets
the prompt plus the tokens so far (with the images) and appends the new segment. One very long chain of thought then
no longer holds a whole step hostage. A trajectory still unfinished after `rollout.partial_max_segments` segments, or at
`rollout.max_new_tokens`, is truncated and scored as truncated (with DAPO's overlong shaping as for any cut response).
Degenerate repetition is looked for over the whole trajectory after every segment, so a loop that spans segments is
cut and penalised like one inside a segment.

Every token keeps the log-prob it had under the policy that sampled it (its behaviour log-prob) and the step of that
policy. The loss takes each token's importance ratio against its behaviour log-prob (clipped as the algorithm clips):
the standard off-policy correction, so earlier segments still teach, at most within the clip range. With
`rollout.partial_train_old_segments: false` tokens sampled before the current step are masked out of the loss instead (they still
condition the newer tokens). The k1.5 report describes reusing the earlier segments from the buffer and computing
only the newest segment on-policy, and says that some segments can be excluded from the loss; it does not say which
correction it applies to the rest. Training every token against its own behaviour log-prob is the default here
because it uses all the data and the ratio clip bounds how far a stale token can move the policy; masking is the
conservative alternative.

The buffer is per rank (a rank's groups never move to another rank) and is saved with every checkpoint, so a resumed
run continues the same unfinished trajectories.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from mmreason.data.batching import PromptBatch
from mmreason.generation import Prompts, decode_responses, encode, eos_token_ids
from mmreason.problem import Problem
from mmreason.rl.repetition import find_degenerate_repetition
from mmreason.rl.rollout import Rollout, split_vision_per_prompt


@dataclass
class Trajectory:
    """One sample's response so far."""

    tokens: list[int] = field(default_factory=list)
    """Response tokens generated so far (its EOS included once it ended)."""
    logprobs: list[float] = field(default_factory=list)
    """Behaviour log-prob of each token: under the policy that sampled it, computed by the trainer."""
    steps: list[int] = field(default_factory=list)
    """The RL step whose policy sampled each token."""
    ended: bool = False
    """Reached EOS."""
    repetitive: bool = False
    """Cut at degenerate repetition (over all its segments)."""
    truncated: bool = False
    """Ran out of budget (rollout.max_new_tokens or max_segments) without EOS."""

    @property
    def finished(self) -> bool:
        return self.ended or self.repetitive or self.truncated


@dataclass
class PartialGroup:
    """A prompt's G trajectories; finished when every one of them is."""

    index: int
    """The prompt's index in the RL prompt set (the sampler's index)."""
    trajectories: list[Trajectory]
    segments: int = 0
    """Generation rounds this group has been through."""
    first_step: int = 0
    """The step that started it."""

    @property
    def finished(self) -> bool:
        return all(t.finished for t in self.trajectories)


class ReplayBuffer:
    """Groups waiting to be continued (unfinished) or trained on (finished but not yet used), oldest first.

    Groups are held whole: a prompt's G trajectories are put, continued and taken together."""

    def __init__(self) -> None:
        self.groups: list[PartialGroup] = []

    def __len__(self) -> int:
        return len(self.groups)

    def put(self, groups: Sequence[PartialGroup]) -> None:
        self.groups.extend(groups)

    def take(self, count: int, *, finished: bool) -> list[PartialGroup]:
        """Remove and return up to `count` of the oldest groups that are (or are not) finished."""
        chosen = [g for g in self.groups if g.finished == finished][: max(count, 0)]
        ids = {id(g) for g in chosen}
        self.groups = [g for g in self.groups if id(g) not in ids]
        return chosen

    def take_groups(self, groups: Sequence[PartialGroup]) -> None:
        """Remove exactly these groups."""
        ids = {id(g) for g in groups}
        self.groups = [g for g in self.groups if id(g) not in ids]

    def count(self, *, finished: bool) -> int:
        return sum(g.finished == finished for g in self.groups)

    def state_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (loads with torch.load(weights_only=True))."""
        return {"groups": [dataclasses.asdict(g) for g in self.groups]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.groups = [PartialGroup(index=g["index"], segments=g["segments"], first_step=g["first_step"],
                                    trajectories=[Trajectory(**t) for t in g["trajectories"]]) for g in state["groups"]]


# ---- one generation round ---------------------------------------------------------------------------------------


def extend_prompts(prompts: Prompts, prefixes: Sequence[Sequence[int]], pad_id: int) -> Prompts:
    """Each prompt row followed by its response so far (left padded again); images unchanged."""
    batch = prompts.batch
    rows = [ids[mask.bool()].tolist() + list(prefix) for ids, mask, prefix in zip(batch.input_ids, batch.attention_mask, prefixes)]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=batch.input_ids.dtype)
    attention_mask = torch.zeros((len(rows), width), dtype=batch.attention_mask.dtype)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row):] = torch.tensor(row, dtype=batch.input_ids.dtype)
        attention_mask[i, width - len(row):] = 1
    return Prompts(PromptBatch(input_ids, attention_mask, batch.pixel_values, batch.image_grid_thw), prompts.images)


def grow(trajectory: Trajectory, new_tokens: list[int], ended: bool, step: int, *, max_new_tokens: int,
         repetition_ngram: int, repetition_count: int) -> None:
    """Append a segment: cap at max_new_tokens, then cut degenerate repetition found anywhere in the whole response."""
    room = max_new_tokens - len(trajectory.tokens)
    if len(new_tokens) > room:
        new_tokens, ended = new_tokens[:room], False
    trajectory.tokens += new_tokens
    trajectory.logprobs += [0.0] * len(new_tokens)  # filled by the behaviour pass
    trajectory.steps += [step] * len(new_tokens)
    trajectory.ended = ended
    cut = find_degenerate_repetition(trajectory.tokens, repetition_ngram, repetition_count) if repetition_count else None
    if cut is not None and cut < len(trajectory.tokens):
        del trajectory.tokens[cut:], trajectory.logprobs[cut:], trajectory.steps[cut:]
        trajectory.repetitive, trajectory.ended = True, False
    if not trajectory.finished and len(trajectory.tokens) >= max_new_tokens:
        trajectory.truncated = True


def advance(groups: Sequence[PartialGroup], problems: Mapping[int, Problem] | Sequence[Problem], model: Any, processor: Any,
            engine: Any, cfg: Any, step: int, *, template: str, system_prompt: str | None, min_pixels: int | None,
            max_pixels: int | None) -> int:
    """Generate one segment for every unfinished trajectory of `groups` (in place); returns the tokens generated.

    `problems[g.index]` is a group's prompt (a list, a dict, or the RL loop's PromptIndex, which decodes a prompt's
    images when drawn). `cfg` is the RolloutConfig (its partial_* keys hold the budget). A group reaching
    max_segments has its unfinished trajectories truncated.
    """
    rows = [(g, t) for g in groups for t in g.trajectories if not t.finished]
    eos = set(eos_token_ids(model, processor))
    pad_id = processor.tokenizer.pad_token_id
    generated = 0
    for start in range(0, len(rows), cfg.generation_batch_size):
        chunk = rows[start : start + cfg.generation_batch_size]
        prompts = encode(processor, [problems[g.index] for g, _ in chunk], template, system_prompt=system_prompt,
                         min_pixels=min_pixels, max_pixels=max_pixels, with_images=engine.needs_images)
        prompts = extend_prompts(prompts, [t.tokens for _, t in chunk], pad_id)
        out = engine.generate(model, processor, prompts, num_samples=1, temperature=cfg.temperature, top_p=cfg.top_p,
                              max_new_tokens=cfg.partial_segment_tokens)
        for (_, trajectory), ids, mask in zip(chunk, out.response_ids, out.response_mask):
            new_tokens = ids[mask.bool()].tolist()
            generated += len(new_tokens)
            grow(trajectory, new_tokens, bool(new_tokens) and new_tokens[-1] in eos, step,
                 max_new_tokens=cfg.max_new_tokens, repetition_ngram=cfg.repetition_ngram,
                 repetition_count=cfg.repetition_count)
    for group in groups:
        group.segments += 1
        if group.segments >= cfg.partial_max_segments:
            for trajectory in group.trajectories:
                if not trajectory.finished:
                    trajectory.truncated = True
    return generated


# ---- groups -> the tensors the update takes ------------------------------------------------------------------------


def to_rollout(groups: Sequence[PartialGroup], problems: Mapping[int, Problem] | Sequence[Problem], model: Any, processor: Any, *,
               template: str, system_prompt: str | None, min_pixels: int | None, max_pixels: int | None
               ) -> tuple[Rollout, torch.Tensor, torch.Tensor]:
    """(Rollout of the groups' trajectories so far, behaviour log-probs [N, L], sampling step of each token [N, L]).

    A group's G rows are adjacent; responses right padded (log-probs 0 and step -1 on padding).
    """
    G = len(groups[0].trajectories)
    chunk = [problems[g.index] for g in groups]
    prompts = encode(processor, chunk, template, system_prompt=system_prompt, min_pixels=min_pixels, max_pixels=max_pixels)
    batch = prompts.batch
    trajectories = [t for g in groups for t in g.trajectories]
    width = max(1, max(len(t.tokens) for t in trajectories))
    pad_id = processor.tokenizer.pad_token_id
    response_ids = torch.full((len(trajectories), width), pad_id, dtype=torch.long)
    response_mask = torch.zeros((len(trajectories), width), dtype=torch.long)
    logprobs = torch.zeros((len(trajectories), width), dtype=torch.float32)
    steps = torch.full((len(trajectories), width), -1, dtype=torch.long)
    for row, t in enumerate(trajectories):
        n = len(t.tokens)
        response_ids[row, :n] = torch.tensor(t.tokens, dtype=torch.long)
        response_mask[row, :n] = 1
        logprobs[row, :n] = torch.tensor(t.logprobs, dtype=torch.float32)
        steps[row, :n] = torch.tensor(t.steps, dtype=torch.long)
    pixels, grids = split_vision_per_prompt(chunk, batch.pixel_values, batch.image_grid_thw)
    eos = eos_token_ids(model, processor)
    rollout = Rollout(
        prompt_ids=batch.input_ids.repeat_interleave(G, dim=0), prompt_mask=batch.attention_mask.repeat_interleave(G, dim=0),
        response_ids=response_ids, response_mask=response_mask,
        truncated=torch.tensor([t.truncated for t in trajectories]), repetitive=torch.tensor([t.repetitive for t in trajectories]),
        texts=decode_responses(processor, response_ids, response_mask, eos),
        prompt_index=torch.arange(len(groups)).repeat_interleave(G), problems=chunk, pixel_values=pixels,
        image_grid_thw=grids,
    )
    return rollout, logprobs, steps


def record_behaviour(groups: Sequence[PartialGroup], logprobs: torch.Tensor, step: int) -> None:
    """Store, for the tokens sampled at `step`, their log-probs [N, L] under the policy that sampled them."""
    trajectories = [t for g in groups for t in g.trajectories]
    for row, t in enumerate(trajectories):
        values = logprobs[row, : len(t.tokens)].tolist()
        t.logprobs = [new if s == step else old for old, new, s in zip(t.logprobs, values, t.steps)]


def new_groups(indices: Sequence[int], group_size: int, step: int) -> list[PartialGroup]:
    return [PartialGroup(index=i, trajectories=[Trajectory() for _ in range(group_size)], first_step=step) for i in indices]
