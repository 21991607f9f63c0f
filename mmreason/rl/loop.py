"""The RL-with-verifiable-rewards recipe: setup -> train -> cleanup.

One step, top to bottom (shapes: B prompts on this rank, G samples each, N = B*G rows, L response tokens):

    prompts   = sampler.sample(step)                          uniform / curriculum / prioritized (k1.5)
    rollout   = generate_rollouts(policy, prompts)             ids [N, P+L], response_mask [N, L], texts
                (DAPO dynamic sampling: drop all-right / all-wrong groups, draw again until B groups)
    rewards   = compute_reward(...): named terms and their weighted sum, each [N]   (scored once per response,
                also what dynamic sampling reads)
    adv       = compute_advantages(rewards.overall.view(B, G), cfg.algo)          [B, G] -> [N]
    old, ref  = log-probs of the rollout policy and of the reference (rl/reference.py)   [N, L]
                (old gets a pass of its own only if rollout_policy_forward_needed; one pass over the batch is on-policy)
    for epoch in ppo_epochs, for micro-batch: loss = compute_policy_loss(...); backward; step

What it keeps from GRPO: group-relative advantages, token-level clipped
ratios, optional k3 KL to a frozen reference (beta = 0 loads none). It drops
the value model. `algo.name` is a preset over the advantage estimator, the
loss, its aggregation and the reference policy (rl/presets.py): Kimi k1.5
replaces the clipped ratio by its mirror-descent surrogate, with the reference
refreshed to the current policy every `algo.reference_refresh_every` steps
(optionally resetting the optimizer).

Every rank scores its own groups (groups never span ranks); losses divide by
the token and sequence counts of the whole step on all ranks, so the gradient
does not depend on micro-batching or the number of ranks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch
import torch.distributed as dist

from mmreason.config import Config, save_config, validate_for_world
from mmreason.distributed import all_reduce_max, all_reduce_sum, device
from mmreason.engine import (
    build_engine, ranks_weight_difference, export_hf, load_checkpoint, load_rank_state, reset_optimizer_state,
    save_checkpoint,
    seed_everything, step_with_grad_norm,
)
from mmreason.logprobs import response_logprobs as token_logprobs_of_response
from mmreason.export_meta import after_export
from mmreason.metrics import MetricsLogger, StageTimer, progress_bar, rl_samples
from mmreason.models import load_policy
from mmreason.data.prompt_index import DEFAULT_CACHE_SIZE, PromptIndex, build_prompt_index
from mmreason.problem import Problem
from mmreason.rewards import RewardRecord, check_ground_truth, compute_reward
from mmreason.rl.advantages import compute_advantages, informative_groups
from mmreason.rl.losses import BatchCounts, PolicyBatch, compute_policy_loss
from mmreason.rl.partial import PartialGroup, ReplayBuffer, advance, new_groups, record_behaviour, to_rollout
from mmreason.rl.reference import ReferencePolicy
from mmreason.rl.rollout import Rollout, concat_rollouts, generate_rollouts, select_prompts
from mmreason.recipe import Validator, sampling_weights
from mmreason.rl.sampler import PromptSampler, sample_item
from mmreason.engines import build_engine as build_rollout_engine, logprob_abs_diff
from mmreason.generation import vision_token_ids
from mmreason import vision_cache

log = logging.getLogger(__name__)


# ---- setup helpers ------------------------------------------------------------


def load_prompt_set(urls: str, cache_size: int = DEFAULT_CACHE_SIZE) -> PromptIndex:
    """Every RL prompt indexed in memory (the sampler needs random access): records and encoded image bytes,
    images decoded when a prompt is drawn (`prompts[i]`), the `cache_size` (data.image_cache_size) most recently
    drawn kept decoded (mmreason/data/prompt_index.py). Unverifiable ground truths fail here. Corrupt samples (and
    images over data.max_image_pixels, checked from their headers) are skipped and counted, as are samples lost to
    truncated shards; the counts are logged once."""
    from mmreason.data.shards import SkipCounter

    skipped = SkipCounter()
    problems = build_prompt_index(urls, cache_size=cache_size, skipped=skipped)
    if skipped.count or skipped.truncated:
        log.warning("data.train %r: %d prompts loaded, %d corrupt samples skipped (first reasons: %s), %d samples lost "
                    "in %d truncated shard(s)", urls, len(problems), skipped.count,
                    [reason for _, _, reason in skipped.records[:3]], skipped.lost, len(skipped.truncated))
    if not problems:
        raise ValueError(f"data.train {urls!r}: no problems found")
    for record in problems.records:
        check_ground_truth(record)
    return problems


# ---- the step's stages --------------------------------------------------------


def rollout_rewards(rollout: Rollout, cfg: Config, step: int) -> RewardRecord:
    """The reward record of every response of `rollout` (whole groups)."""
    return compute_reward(rollout.texts, rollout.row_problems(), lengths=rollout.response_lengths(),
                          truncated=rollout.truncated, repetitive=rollout.repetitive, group_size=cfg.rollout.group_size,
                          step=step, max_new_tokens=cfg.rollout.max_new_tokens, cfg=cfg.reward)


def group_rows(groups: list[int], group_size: int) -> torch.Tensor:
    """Row indices [len(groups) * G] of prompt groups `groups` (a prompt's G rows are adjacent)."""
    if not groups:
        return torch.zeros(0, dtype=torch.long)
    return torch.cat([torch.arange(i * group_size, (i + 1) * group_size) for i in groups])


def collect_rollout(model: Any, processor: Any, prompts: Sequence[Problem], sampler: PromptSampler, cfg: Config, step: int,
                    rank: int, world_size: int, synced_gpus: bool, timer: StageTimer | None = None,
                    rollout_engine: Any = None) -> tuple[Rollout, RewardRecord, dict[str, float], list[int]]:
    """This rank's B prompt groups; with DAPO dynamic sampling, only groups whose accuracies differ.

    Returns the rollout, its rewards (each response scored once, in the round that generated it), sampling
    stats and the global sampler indices of its prompts. `timer` gets time/generate and time/reward.
    """
    timer = timer or StageTimer()
    per_rank = cfg.rollout.prompts_per_step // world_size
    G = cfg.rollout.group_size
    generate_kwargs = dict(template=cfg.data.prompt_template, system_prompt=cfg.data.system_prompt,
                           min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels, synced_gpus=synced_gpus,
                           engine=rollout_engine)
    drawn: list[int] = []
    kept: list[tuple[Rollout, RewardRecord, list[int]]] = []
    spare: list[tuple[Rollout, RewardRecord, list[int]]] = []
    rounds = 1 + (cfg.algo.max_sampling_rounds if cfg.algo.dynamic_sampling else 0)
    kept_count = generated_groups = 0
    for _round in range(rounds):
        available = len(sampler) - len(drawn)
        if available <= 0:
            break
        # Every rank draws the same global list (a pure function of step and what was drawn), then takes its share.
        draw = sampler.sample(step, min(cfg.rollout.prompts_per_step, available), exclude=drawn)
        drawn += draw
        if len(draw) < world_size:  # same on every rank: each draws the same list
            break
        mine = draw[rank::world_size]
        with timer("generate"):
            rollout = generate_rollouts(model, processor, [prompts[i] for i in mine], cfg.rollout, **generate_kwargs)
        generated_groups += len(mine)
        with timer("reward"):
            rewards = rollout_rewards(rollout, cfg, step)
        if not cfg.algo.dynamic_sampling:
            kept.append((rollout, rewards, mine))
            kept_count += len(mine)
            break
        informative = informative_groups(rewards.accuracy.view(-1, G)).tolist()
        good = [i for i, ok in enumerate(informative) if ok][: per_rank - kept_count]
        bad = [i for i, ok in enumerate(informative) if not ok]
        kept.append((select_prompts(rollout, good, G), rewards.select(group_rows(good, G)), [mine[i] for i in good]))
        spare.append((select_prompts(rollout, bad, G), rewards.select(group_rows(bad, G)), [mine[i] for i in bad]))
        kept_count += len(good)
        # Every rank runs the same number of rounds, so ranks stay in step: generation is a collective when
        # the caller samples from partitioned weights (synced_gpus), and the loop's collectives follow.
        if all_reduce_max(float(kept_count < per_rank)) == 0.0:
            break
    informative_count = kept_count
    # Too few informative groups after the last round: fill up with uninformative ones (zero advantage).
    for rollout, rewards, indices in spare:
        if kept_count >= per_rank:
            break
        take = list(range(min(per_rank - kept_count, len(indices))))
        kept.append((select_prompts(rollout, take, G), rewards.select(group_rows(take, G)), [indices[i] for i in take]))
        kept_count += len(take)
    if kept_count < per_rank:
        raise RuntimeError(f"step {step}: rank {rank} collected {kept_count} prompt groups, needs {per_rank}; "
                           "the prompt set is smaller than rollout.prompts_per_step")
    kept = [part for part in kept if part[2]]  # rounds that kept no group add nothing
    rollout = concat_rollouts([r for r, _, _ in kept], processor.tokenizer.pad_token_id)
    rewards = RewardRecord.concat([w for _, w, _ in kept])
    indices = [i for _, _, idx in kept for i in idx]
    stats = {"sampling/generated_groups": generated_groups, "sampling/informative_fraction": informative_count / per_rank}
    return rollout, rewards, stats, indices


class PartialStep(NamedTuple):
    """What a partial-rollout step trains on, beyond the rollout and its rewards."""

    behaviour_logprobs: torch.Tensor  # [N, L] each token's log-prob under the policy that sampled it
    loss_mask: torch.Tensor  # [N, L] tokens the loss trains (all response tokens, or this step's only)
    stats: dict[str, float]


def collect_partial_rollout(model: Any, processor: Any, prompts: Sequence[Problem], sampler: PromptSampler,
                            buffer: ReplayBuffer, cfg: Config, step: int, rank: int, world_size: int,
                            timer: StageTimer, rollout_engine: Any,
                            image_cache: vision_cache.ImageFeatureCache | None = None
                            ) -> tuple[Rollout, RewardRecord, dict[str, float], list[int], PartialStep]:
    """Kimi k1.5 partial rollouts (rl/partial.py): this rank's B finished groups for the step.

    Each generation round advances every unfinished group in the buffer by one segment (so a group finishes at
    most rollout.partial_max_segments rounds after it started) and starts new groups: in a step's first round B
    minus the finished groups already waiting (so B new groups enter per step, as many as a step consumes, and
    the pipeline neither drains nor grows), in later rounds as many as the step still lacks. Rounds go on until
    every rank has B finished groups, which it trains on: up to rollout.partial_buffer_share x B begun in earlier
    steps (oldest first), then this step's own, then older ones again if this step's do not suffice; the rest
    wait, finished, for a later step. The tokens sampled this step get their behaviour log-probs from `model`
    (the policy that sampled them), its frozen tower's image features taken from `image_cache` when given.
    """
    per_rank = cfg.rollout.prompts_per_step // world_size
    G = cfg.rollout.group_size
    kwargs = dict(template=cfg.data.prompt_template, system_prompt=cfg.data.system_prompt,
                  min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels)
    old_quota = int(cfg.rollout.partial_buffer_share * per_rank)  # groups begun in earlier steps this step may train

    def selection() -> list[PartialGroup]:
        finished = [g for g in buffer.groups if g.finished]  # oldest first
        older = [g for g in finished if g.first_step < step]
        own = [g for g in finished if g.first_step == step]
        return (older[:old_quota] + own + older[old_quota:])[:per_rank]

    touched: list[PartialGroup] = []
    drawn: list[int] = []
    generated = continued = rounds = 0
    while all_reduce_max(float(len(selection()) < per_rank)) > 0:
        carried = buffer.take(len(buffer), finished=False)
        # One global draw (the same on every rank), each rank taking as many fresh prompts as it lacks.
        lacking = per_rank - (buffer.count(finished=True) if rounds == 0 else len(selection()))
        needs = all_gather_ints(max(lacking, 0))
        draw = sampler.sample(step, sum(needs), exclude=drawn) if sum(needs) else []
        drawn += draw
        if len(draw) < sum(needs):
            raise RuntimeError(f"step {step}: the prompt set has {len(sampler)} prompts, fewer than a step needs")
        groups = carried + new_groups(draw[sum(needs[:rank]) : sum(needs[: rank + 1])], G, step)
        with timer("generate"):
            generated += advance(groups, prompts, model, processor, rollout_engine, cfg.rollout, step, **kwargs)
        continued += len(carried)
        touched += [g for g in groups if not any(g is seen for seen in touched)]
        buffer.put(groups)
        rounds += 1
    ready = selection()
    buffer.take_groups(ready)
    with timer("logprobs"):  # behaviour log-probs of this step's tokens, under the policy that sampled them
        # A rank that generated nothing this step still runs the pass (over groups with no token of this step, so
        # nothing is recorded): its peers' forwards are collectives under ZeRO-3.
        passed = touched or ready
        seen, _, _ = to_rollout(passed, prompts, model, processor, **kwargs)
        image_states = (vision_cache.encode_prompts(image_cache, model, seen.pixel_values, seen.image_grid_thw)
                        if image_cache is not None else None)
        behaviour = rollout_logprobs(model, seen, cfg.train.micro_batch_size, cfg.rollout.temperature,
                                     cfg.train.logit_chunk_tokens, vision_token_ids(processor), image_states)
        record_behaviour(passed, behaviour, step)
    rollout, behaviour, token_steps = to_rollout(ready, prompts, model, processor, **kwargs)
    with timer("reward"):
        rewards = rollout_rewards(rollout, cfg, step)
    loss_mask = rollout.response_mask.clone()
    if not cfg.rollout.partial_train_old_segments:
        loss_mask &= (token_steps == step).long()
    from_buffer = [g for g in ready if g.first_step < step]
    stats = {
        "partial/buffer_groups": all_reduce_sum(len(buffer)),
        "partial/continued_groups": all_reduce_sum(continued),
        "partial/finished_from_buffer": all_reduce_sum(len(from_buffer)),
        "partial/mean_segments": all_reduce_sum(sum(g.segments for g in ready)) / max(all_reduce_sum(len(ready)), 1),
        "partial/tokens_generated": all_reduce_sum(generated),
        "partial/rounds": float(rounds),
    }
    return rollout, rewards, {}, [g.index for g in ready], PartialStep(behaviour, loss_mask, stats)


def all_gather_ints(value: int) -> list[int]:
    """`value` from every rank, in rank order."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return [value]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return [int(v) for v in gathered]


def rollout_policy_forward_needed(cfg: Config) -> bool:
    """Whether the rollout policy's log-probs need a forward pass of their own before the update.

    With one pass over the batch the weights change only at its end (DeepSpeed steps at the accumulation
    boundary), so every micro-batch's training forward is the rollout policy's own and its detached
    log-probs serve as the old ones (and as the reference when it is the rollout policy): a forward over the
    whole batch saved per step.
    """
    return cfg.algo.ppo_epochs > 1


@torch.no_grad()
def rollout_logprobs(model: Any, rollout: Rollout, micro_batch_size: int, temperature: float,
                     chunk_tokens: int = 512, suppressed_ids: Sequence[int] = (),
                     image_states: list | None = None) -> torch.Tensor:
    """Token log-probs [N, L] of the rollout's responses under `model` (no gradient), on the CPU.

    Every rank runs as many forwards as the rank with most rows (under ZeRO-3 each forward is a collective): a rank
    with fewer repeats its last micro-batch and drops the result.
    """
    starts = list(range(0, rollout.num_rows, micro_batch_size))
    forwards = int(all_reduce_max(len(starts)))
    chunks = []
    for index in range(forwards):
        start = starts[min(index, len(starts) - 1)]
        rows = torch.arange(start, min(start + micro_batch_size, rollout.num_rows))
        logp, _ = response_logprobs(model, rollout, rows, temperature, chunk_tokens, suppressed_ids, image_states)
        if index < len(starts):
            chunks.append(logp.cpu())
    return torch.cat(chunks)


def response_logprobs(model: Any, rollout: Rollout, rows: torch.Tensor, temperature: float,
                      chunk_tokens: int = 512, suppressed_ids: Sequence[int] = (),
                      image_states: list | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward prompt+response of `rows`: (token log-probs [b, L] on the model's device, summed entropy).

    Log-probs are those of the distribution that sampled: logits divided by the sampling temperature, and the
    tokens the engine never samples (`suppressed_ids`, the vision tokens) at probability 0. The output head runs
    chunk by chunk (logprobs.response_logprobs), never on the whole [b, L, V] block. `image_states` (per prompt,
    from vision_cache.encode_prompts): the images as cached frozen-tower states instead of pixels.
    """
    dev = next(model.parameters()).device
    inputs = rollout.model_inputs(rows)
    # Only the columns these rows use: prompts are left padded and responses right padded to the whole rollout's
    # widths, so a micro-batch of short rows would otherwise pay for the longest row of the step.
    prompt_width, response_width = rollout.prompt_ids.shape[1], rollout.response_ids.shape[1]
    first = prompt_width - int(rollout.prompt_mask[rows].sum(dim=1).max())
    kept = int(rollout.response_mask[rows].sum(dim=1).max())
    columns = torch.cat([torch.arange(first, prompt_width), torch.arange(prompt_width, prompt_width + kept)])
    for key in ("input_ids", "attention_mask"):
        inputs[key] = inputs[key][:, columns]
    inputs = {k: (v.to(dev) if v is not None else None) for k, v in inputs.items()}
    if image_states is not None:
        del inputs["pixel_values"], inputs["image_grid_thw"]
        inputs["cached_images"] = vision_cache.batch_images(image_states, rollout.image_grid_thw,
                                                            rollout.prompt_index[rows].tolist())
    out = token_logprobs_of_response(model, inputs, rollout.response_ids[rows, :kept], rollout.response_mask[rows, :kept],
                                     temperature=temperature, chunk_tokens=chunk_tokens, suppressed_ids=suppressed_ids)
    logprobs = torch.nn.functional.pad(out.logprobs, (0, response_width - kept))  # [b, L]; the cut columns are padding
    return logprobs, out.entropy_sum


def plan_micro_batches(rollout: Rollout, micro_batch_size: int, token_budget: int) -> list[torch.Tensor]:
    """The rows of each micro-batch: `micro_batch_size` consecutive rows, or with a token budget, rows of similar
    length packed so that rows x (longest prompt + longest response) stays within `token_budget` (a longer row
    goes alone). Every rank gets as many micro-batches as the rank that needs most (under ZeRO-3 each forward is
    a collective), by splitting its largest ones."""
    if token_budget <= 0:
        return [torch.arange(start, min(start + micro_batch_size, rollout.num_rows))
                for start in range(0, rollout.num_rows, micro_batch_size)]
    prompt_lengths = rollout.prompt_mask.sum(dim=1).tolist()
    response_lengths = rollout.response_mask.sum(dim=1).tolist()
    order = sorted(range(rollout.num_rows), key=lambda r: (prompt_lengths[r] + response_lengths[r]), reverse=True)
    groups: list[list[int]] = []
    for row in order:
        group = groups[-1] if groups else None
        if group is not None:
            widest = max(prompt_lengths[r] for r in group + [row]) + max(response_lengths[r] for r in group + [row])
            if widest * (len(group) + 1) <= token_budget:
                group.append(row)
                continue
        groups.append([row])
    target = int(all_reduce_max(len(groups)))
    while len(groups) < target:
        largest = max(groups, key=len)
        groups.remove(largest)
        groups += [largest[: len(largest) // 2], largest[len(largest) // 2 :]]
    return [torch.tensor(sorted(group)) for group in groups]


def update_policy(engine: Any, rollout: Rollout, old_logprobs: torch.Tensor | None, ref_logprobs: torch.Tensor | None,
                  advantages: torch.Tensor, cfg: Config, world_size: int, grad_accum: int,
                  ref_is_rollout_policy: bool = False, suppressed_ids: Sequence[int] = (),
                  loss_mask: torch.Tensor | None = None, image_states: list | None = None,
                  rollout_policy_logprobs: torch.Tensor | None = None) -> dict[str, float]:
    """ppo_epochs passes of micro-batched gradient steps; returns token-weighted mean stats over all ranks.

    old_logprobs None: one on-policy pass, each micro-batch's own detached log-probs are the old ones; given
    `rollout_policy_logprobs` (a [N, L] tensor on the CPU), they are also copied into it, row by row, so a caller
    can use the rollout policy's log-probs (e.g. for rollout/logprob_diff) without a forward pass of its own.
    ref_is_rollout_policy: the reference is the policy that sampled, so the old log-probs serve as the
    reference too and ref_logprobs is ignored. loss_mask [N, L] (default: the response mask) picks the tokens
    the loss trains; every response token still conditions the ones after it. image_states: the rollout's images
    as cached frozen-tower states (vision_cache.encode_prompts), None to encode them in every forward.
    """
    loss_mask = rollout.response_mask if loss_mask is None else loss_mask
    counts = BatchCounts(num_sequences=int(all_reduce_sum(rollout.num_rows)),
                         num_tokens=max(int(all_reduce_sum(loss_mask.sum())), 1))
    totals: dict[str, float] = {}
    token_total = 0.0
    loss_total = 0.0
    grad_norms = []
    plan = plan_micro_batches(rollout, cfg.train.micro_batch_size, cfg.train.micro_batch_tokens)
    for _epoch in range(cfg.algo.ppo_epochs):
        for index, rows in enumerate(plan):
            # One optimizer step per epoch, after its last micro-batch, however many micro-batches the plan has.
            engine.set_gradient_accumulation_boundary(index == len(plan) - 1)
            logp, entropy_sum = response_logprobs(engine, rollout, rows, cfg.rollout.temperature,
                                                  cfg.train.logit_chunk_tokens, suppressed_ids, image_states)
            dev = logp.device  # the loss runs where the log-probs are; the rollout's tensors live on the CPU
            mask = loss_mask[rows].to(dev)
            old = old_logprobs[rows].to(dev) if old_logprobs is not None else logp.detach()
            if old_logprobs is None and rollout_policy_logprobs is not None:
                rollout_policy_logprobs[rows] = old.float().cpu()
            ref = old if ref_is_rollout_policy else (ref_logprobs[rows].to(dev) if ref_logprobs is not None else None)
            batch = PolicyBatch(logprobs=logp, old_logprobs=old, ref_logprobs=ref, advantages=advantages[rows].to(dev),
                                response_mask=mask)
            loss, stats = compute_policy_loss(batch, counts, cfg.algo, cfg.rollout.max_new_tokens)
            # The loss is this micro-batch's share of the whole step's loss; DeepSpeed divides by its configured
            # grad_accum (whatever the plan's length) and averages over ranks, so scale back up to keep the exact
            # full-batch gradient.
            engine.backward(loss * world_size * grad_accum)
            norm = step_with_grad_norm(engine)
            if norm is not None:
                grad_norms.append(norm)
            tokens = float(mask.sum())
            for key, value in {**stats, "entropy": entropy_sum / max(tokens, 1.0)}.items():
                if key != "loss":
                    totals[key] = totals.get(key, 0.0) + float(value) * tokens
            token_total += tokens
            loss_total += float(stats["loss"])
    all_tokens = all_reduce_sum(token_total)
    out = {key: all_reduce_sum(value) / max(all_tokens, 1.0) for key, value in totals.items()}
    out["loss"] = all_reduce_sum(loss_total) / cfg.algo.ppo_epochs
    out["grad_norm"] = grad_norms[-1] if grad_norms else 0.0
    return out


def gather_successes(indices: list[int], accuracy: torch.Tensor, group_size: int) -> tuple[list[int], list[float]]:
    """(prompt indices, mean accuracy of each group) from every rank, so all ranks update the sampler alike."""
    local = (indices, accuracy.view(-1, group_size).mean(dim=1).tolist())
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return local
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    return [i for g in gathered for i in g[0]], [s for g in gathered for s in g[1]]


def mean_over_ranks(value: torch.Tensor) -> float:
    return all_reduce_sum(value.float().sum()) / max(all_reduce_sum(value.numel()), 1.0)


# ---- the recipe ---------------------------------------------------------------


def run(cfg: Config, rank: int, world_size: int) -> dict[str, float]:
    # ---- setup ----
    validate_for_world(cfg, world_size)
    run_dir = Path(cfg.train.output_dir)
    if rank == 0:
        save_config(cfg, run_dir)
    seed_everything(cfg.train.seed + rank)
    prompts = load_prompt_set(cfg.data.train, cfg.data.image_cache_size)  # images decoded when drawn
    sampler = PromptSampler([sample_item(p.pid, p.meta, cfg.sampler) for p in prompts.records], cfg.sampler,
                            cfg.train.seed)
    model, processor = load_policy(cfg.model, device=device())
    reference = ReferencePolicy(cfg.algo, model)  # copied before the engine wraps (and may partition) the model
    rows_per_rank = cfg.rollout.prompts_per_step // world_size * cfg.rollout.group_size
    grad_accum = rows_per_rank // cfg.train.micro_batch_size
    engine = build_engine(model, cfg.optim, cfg.train, micro_batch_size=cfg.train.micro_batch_size,
                          grad_accum=grad_accum, world_size=world_size)
    start_step = 0
    resumed = load_checkpoint(engine, run_dir) if cfg.train.resume else None
    buffer = ReplayBuffer()  # partial rollouts' unfinished groups (this rank's)
    if resumed is not None:
        start_step, recipe_state = resumed
        sampler.load_state_dict(recipe_state["sampler"])
        rank_state = load_rank_state(run_dir, start_step)
        if cfg.rollout.partial_enabled and rank_state is not None:
            buffer.load_state_dict(rank_state["partial_buffer"])
        reference.resumed(engine.module)
        log.info("resumed from step %d", start_step)
    # The sampler (hf or vllm, cfg.rollout.engine) holds the current weights from here on: synced after every update.
    rollout_engine = build_rollout_engine(cfg.rollout, model_path=cfg.model.path, processor=processor,
                                          model=engine.module, seed=cfg.train.seed + rank)
    # else the update's own forward serves (also as the trainer's side of rollout/logprob_diff)
    old_logprobs_pass = rollout_policy_forward_needed(cfg)
    validate = Validator(cfg, engine, processor, rank, world_size, rollout_engine=rollout_engine)
    logger = MetricsLogger(run_dir, cfg.train, rank=rank, config=cfg, resume_step=start_step)
    bar = progress_bar(total=cfg.train.max_steps, initial=start_step, desc=f"rl/{cfg.algo.name}", disable=rank != 0,
                       lines=False)  # off a terminal, the logger's line every train.log_every steps
    G = cfg.rollout.group_size
    suppressed = vision_token_ids(processor)  # never sampled, so at probability 0 in every log-prob the loss uses
    # A frozen tower's image features, encoded once per image and reused by every forward (mmreason/vision_cache.py)
    image_cache = (vision_cache.ImageFeatureCache(cfg.model.image_feature_cache_mib)
                   if cfg.model.image_feature_cache_mib > 0 and vision_cache.cacheable(engine.module) else None)

    # ---- train ----
    metrics: dict[str, float] = {}
    for step in range(start_step + 1, cfg.train.max_steps + 1):
        timer = StageTimer()
        reference.begin_step(step, engine.module, reset_optimizer=lambda: reset_optimizer_state(engine))
        partial = None
        with sampling_weights(engine, rollout_engine) as policy:
            if cfg.rollout.partial_enabled:
                rollout, rewards, sampling_stats, indices, partial = collect_partial_rollout(
                    policy, processor, prompts, sampler, buffer, cfg, step, rank, world_size, timer, rollout_engine,
                    image_cache)
            else:
                rollout, rewards, sampling_stats, indices = collect_rollout(policy, processor, prompts, sampler, cfg,
                                                                            step, rank, world_size, False, timer,
                                                                            rollout_engine)
        rollout_engine.sleep()  # GPU: the engine frees its KV cache and weights while the trainer works
        advantages = compute_advantages(rewards.overall.view(-1, G), cfg.algo).reshape(-1)  # [B, G] -> [N]
        with timer("encode_images"):  # one tower call per step on every rank (a collective under ZeRO-3)
            image_states = (vision_cache.encode_prompts(image_cache, engine.module, rollout.pixel_values,
                                                        rollout.image_grid_thw) if image_cache is not None else None)
        with timer("logprobs"):
            if partial is not None:  # each token against the policy that sampled it (maybe steps ago)
                old_logprobs = partial.behaviour_logprobs
            else:
                old_logprobs = (rollout_logprobs(engine.module, rollout, cfg.train.micro_batch_size,
                                                 cfg.rollout.temperature, cfg.train.logit_chunk_tokens, suppressed,
                                                 image_states)
                                if old_logprobs_pass else None)
            ref_logprobs = (rollout_logprobs(reference.model, rollout, cfg.train.micro_batch_size, cfg.rollout.temperature,
                                             cfg.train.logit_chunk_tokens, suppressed, image_states)
                            if reference.model is not None else None)
        # An engine that returns its log-probs (vllm) is checked against the trainer's: those of the old-log-prob
        # pass or, without one, of the update's own on-policy forward, which fills this tensor.
        on_policy_logprobs = (torch.zeros_like(rollout.engine_logprobs, dtype=torch.float32)
                              if old_logprobs is None and rollout.engine_logprobs is not None else None)
        with timer("update"):
            update_stats = update_policy(engine, rollout, old_logprobs, ref_logprobs, advantages, cfg, world_size,
                                         grad_accum, ref_is_rollout_policy=reference.is_rollout_policy,
                                         suppressed_ids=suppressed,
                                         loss_mask=partial.loss_mask if partial is not None else None,
                                         image_states=image_states,
                                         rollout_policy_logprobs=on_policy_logprobs)
        trainer_logprobs = old_logprobs if old_logprobs is not None else on_policy_logprobs
        with timer("weight_sync"):
            rollout_engine.wake()
            rollout_engine.sync_weights(engine.module)
        sampler.update(*gather_successes(indices, rewards.accuracy, G))
        lengths = rollout.response_lengths()
        # With partial rollouts a step generates segments, not the whole responses it trains on.
        generated_tokens = partial.stats["partial/tokens_generated"] if partial is not None else all_reduce_sum(lengths.sum())
        metrics = {
            "reward/mean": mean_over_ranks(rewards.overall),
            **{f"reward/{name}": mean_over_ranks(value) for name, value in rewards.terms.items()},
            # answers whose verification ran out of time (scored 0, reason "timeout"): all ranks, this step
            "reward/verify_timeouts": all_reduce_sum(sum(reason == "timeout" for reason in rewards.reasons)),
            "response_length/mean": mean_over_ranks(lengths),
            "response_length/max": all_reduce_max(lengths.max()),
            "response/truncated_fraction": mean_over_ranks(rollout.truncated),
            "response/repetitive_fraction": mean_over_ranks(rollout.repetitive),
            "advantage/zero_fraction": mean_over_ranks(advantages == 0),
            **update_stats,
            "lr": engine.get_lr()[0],
            **timer.times,
            "rollout/tokens_generated": generated_tokens,  # new tokens this step, all ranks
            "tokens_per_s": generated_tokens / max(all_reduce_sum(timer.times["time/generate"]) / world_size, 1e-9),
            **sampling_stats,
            **(partial.stats if partial is not None else {}),
            **(image_cache.stats() if image_cache is not None else {}),
            **{f"sampler/{k}": v for k, v in sampler.stats().items()},
        }
        if rollout.engine_logprobs is not None and trainer_logprobs is not None:  # sampler vs trainer agreement
            diff = logprob_abs_diff(rollout.engine_logprobs, trainer_logprobs, rollout.response_mask)
            metrics["rollout/logprob_diff"] = mean_over_ranks(diff)
            # the worst token too: a mean near 0 can hide a few tokens the sampler and trainer disagree on (bf16)
            metrics["rollout/logprob_diff_max"] = all_reduce_max(diff.max() if diff.numel() else 0.0)
        if validate and ((cfg.train.eval_every and step % cfg.train.eval_every == 0) or step == cfg.train.max_steps):
            metrics.update(validate())
        if step == cfg.train.max_steps:  # a collective: every rank must hold the same weights
            metrics["ranks/weight_max_diff"] = ranks_weight_difference(engine.module)
        logger.log(step, metrics)
        if cfg.train.log_samples_every and (step % cfg.train.log_samples_every == 0 or step == cfg.train.max_steps):
            logger.log_samples(step, rl_samples(rollout, rewards, G, cfg.data.prompt_template, cfg.data.system_prompt))
        bar.update(1)
        bar.set_postfix(acc=f"{metrics['reward/accuracy']:.2f}", len=f"{metrics['response_length/mean']:.0f}")
        if step == cfg.train.max_steps or (cfg.train.save_every and step % cfg.train.save_every == 0):
            save_checkpoint(engine, run_dir, step, {"sampler": sampler.state_dict()}, cfg.train.keep_checkpoints,
                            rank_state={"partial_buffer": buffer.state_dict()} if cfg.rollout.partial_enabled else None)
            export_hf(engine, processor, run_dir, step)
            after_export(run_dir, cfg, step, rank)  # mmreason_generation.json; hf/step-N per train.keep_hf_every
    bar.close()

    # ---- cleanup ----
    validate.close()
    rollout_engine.close()
    logger.close()
    return metrics
