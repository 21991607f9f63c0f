"""Run the curation steps in order: input shards in, curated shards + report out.

    dedup -> decontam -> tagging -> evaluability -> [presample] -> hackable -> blind -> difficulty -> balance

Memory: the first four steps work one problem at a time, so the input is
streamed through them once; what survives is kept as image-free records, and
the model steps and the final write read the images again from the input
shards (see `source`). Nothing holds the whole pool's pixels.

Every rank (under `deepspeed data_prep/curate.py ...`) reads the whole input
and runs the cheap steps itself (they are deterministic, so all ranks agree);
the model steps split their problems between the ranks and merge through
their caches (see `model_steps`). Rank 0 alone writes the output directory:

    shard-000000.tar ...   curated problems (meta domain, subject, pass_rate)
    report.json            counts per step, domain and difficulty mix before/after
    report.md              the same as tables, with the plots
    removed.jsonl          one line per removed problem: pid, step, kind, reason, related pid
    domains.png            domain mix before/after
    difficulty.png         pass-rate (or difficulty bucket) histogram before/after
    config.yaml            the resolved config
    cache/                 model-step caches, reused by a restarted run
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from mmreason.config import ModelConfig, save_config
from mmreason.curation import balance as balance_step
from mmreason.curation.config import CurateConfig, GenerationConfig
from mmreason.curation.decontam import EvalMatcher
from mmreason.curation.dedup import Deduplicator
from mmreason.curation.difficulty import drop_by_pass_rate, measure_pass_rates
from mmreason.curation.evaluability import EvaluabilityFilter
from mmreason.curation.blind import filter_blind
from mmreason.curation.hackable import filter_hackable
from mmreason.curation.model_steps import (
    GenerateFn,
    RankContext,
    SamplingSetup,
    fingerprint,
    rank_context_from_environment,
)
from mmreason.curation.removal import Check, Removal, StepResult
from mmreason.curation.report import (
    DIFFICULTY_ORDER,
    CurationReport,
    StepSummary,
    pass_rate_histogram,
    sorted_counts,
    write_report,
)
from mmreason.curation.skew import AnswerClassTally
from mmreason.curation.source import InputShards, without_images
from mmreason.curation.tagging import Tagger
from mmreason.data.shards import write_shards
from mmreason.problem import Problem

log = logging.getLogger(__name__)

STEP_ORDER = (
    "dedup", "decontam", "tagging", "evaluability", "presample", "hackable", "blind", "difficulty", "balance"
)
"""The order the steps run in (and are listed in the report): streamed steps first, then record steps.
presample (balance.presample > 0) caps what the model steps see; it is off by default, as in k1.5."""


class ModelGenerators:
    """Builds the steps' GenerateFns from one policy, loaded on first use (not at all if nothing is generated),
    sampling through the engine `generation.engine` names; `close()` releases it."""

    def __init__(self, model: ModelConfig, generation: GenerationConfig, local_rank: int = 0, seed: int = 0):
        self.model_cfg = model
        self.generation = generation
        self.local_rank = local_rank
        self.seed = seed
        self._policy = None
        self._engine = None

    def _load(self):
        if self._policy is None:
            import torch

            from mmreason.models import load_policy

            device = torch.device(f"cuda:{self.local_rank}") if torch.cuda.is_available() else torch.device("cpu")
            self._policy = load_policy(self.model_cfg, device=device)
            from mmreason.engines import sampling_engine

            model, processor = self._policy
            self._engine = sampling_engine(self.generation.engine, model_path=self.model_cfg.path, processor=processor,
                                           model=model, seed=self.seed)
        return self._policy

    def generate_fn(self, template: str, max_new_tokens: int, response_prefix: str = "") -> GenerateFn:
        from mmreason.generation import generate_texts

        def generate(problems: Sequence[Problem], num_samples: int, temperature: float) -> list[list[str]]:
            model, processor = self._load()
            return generate_texts(
                model, processor, list(problems),
                template=template,
                num_samples=num_samples,
                temperature=temperature,
                top_p=self.generation.top_p,
                max_new_tokens=max_new_tokens,
                # generation.batch_size counts sequences; each prompt brings num_samples of them.
                batch_size=max(1, self.generation.batch_size // num_samples),
                response_prefix=response_prefix,
                engine=self._engine,
            )

        return generate

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def model_fingerprint(cfg: CurateConfig) -> str:
    """The model and decoding settings shared by the model steps (part of every cache line's fingerprint)."""
    m, g = cfg.model, cfg.generation
    return fingerprint(m.path, m.dtype, m.min_pixels, m.max_pixels, g.top_p)


def _removed_by_kind(removed: Sequence[Removal]) -> dict[str, int]:
    return sorted_counts(Counter(r.kind for r in removed))


def run_curation(
    cfg: CurateConfig,
    *,
    generate_fns: Mapping[str, GenerateFn] | None = None,
    ranks: RankContext | None = None,
) -> CurationReport:
    """Run the enabled steps on cfg.input and (rank 0) write cfg.output; returns the report on every rank.

    generate_fns: {"hackable": fn, "blind": fn, "difficulty": fn} replacing the model (tests,
    or another engine); a step missing from it uses the policy at cfg.model.path.
    ranks: defaults to the torch.distributed world of the environment (one process if none).
    """
    if ranks is not None:
        return _run(cfg, generate_fns or {}, ranks)
    ranks = rank_context_from_environment(cfg.generation.dist_timeout_minutes)
    try:
        return _run(cfg, generate_fns or {}, ranks)
    finally:
        ranks.close()


@dataclass
class _StreamTally:
    """A streamed step's removals and time, summed over the problems."""

    removed: list[Removal] = field(default_factory=list)
    seconds: float = 0.0


def _stream_steps(cfg: CurateConfig) -> list[tuple[str, bool, Callable[[], Check]]]:
    """The per-problem steps in order: (name, enabled, build its check)."""
    return [
        ("dedup", cfg.dedup.enabled, lambda: Deduplicator(cfg.dedup)),
        ("decontam", cfg.decontam.enabled, lambda: EvalMatcher(cfg.decontam, cfg.eval_sets)),
        ("tagging", cfg.tagging.enabled, lambda: Tagger(cfg.tagging)),
        ("evaluability", cfg.evaluability.enabled, lambda: EvaluabilityFilter(cfg.evaluability)),
    ]


def _run(cfg: CurateConfig, given: Mapping[str, GenerateFn], ranks: RankContext) -> CurationReport:
    source = InputShards(cfg.input, output=cfg.output)
    if cfg.decontam.enabled and not cfg.eval_sets:
        log.warning("curate: decontam is enabled but eval_sets is empty; nothing to decontaminate against")

    # Pass 1: the per-problem steps, streamed; survivors are kept as image-free records.
    stream_steps = _stream_steps(cfg)
    checks = [(name, build()) for name, enabled, build in stream_steps if enabled]
    tallies = {name: _StreamTally() for name, _ in checks}
    report_tagger = Tagger(cfg.tagging) if cfg.tagging.enabled else None
    # The cleaning steps compare problems by similarity; the tally names answer classes they nearly emptied.
    cleaning_steps = [name for name, _ in checks if name in ("dedup", "decontam")]
    answer_classes = AnswerClassTally(cfg.dedup.skew_min_problems, cleaning_steps)
    domains_before: Counter[str] = Counter()
    buckets_before: Counter[str] = Counter()  # the difficulty histogram's "before" when the difficulty step is off
    num_input = 0
    records: list[Problem] = []
    for problem in source.problems():
        # The input mix is counted with the same tagging rules, so before/after compare like with like.
        domains_before[balance_step.domain_of(report_tagger(problem) if report_tagger else problem)] += 1
        buckets_before[balance_step.difficulty_bucket(problem, cfg.balance)] += 1
        num_input += 1
        class_key = answer_classes.add(problem)
        outcome: Problem | Removal = problem
        for name, check in checks:
            start = time.perf_counter()
            outcome = check(outcome)
            tallies[name].seconds += time.perf_counter() - start
            if isinstance(outcome, Removal):
                tallies[name].removed.append(outcome)
                if name in cleaning_steps:
                    answer_classes.remove(class_key, name)
                break
        else:
            records.append(without_images(outcome))
    log.info("curate: %d input problems from %s (%d corrupt samples skipped)",
             num_input, cfg.input, source.skipped.count)

    summaries: list[StepSummary] = []
    removed_all: list[Removal] = []
    remaining = num_input
    for name, enabled, _ in stream_steps:
        if not enabled:
            summaries.append(StepSummary(name, enabled=False, kept=remaining))
            continue
        tally = tallies[name]
        remaining -= len(tally.removed)
        removed_all += tally.removed
        summaries.append(StepSummary(name, True, len(tally.removed), remaining, _removed_by_kind(tally.removed),
                                     round(tally.seconds, 3)))
        log.info("curate: %-12s removed %6d, kept %6d (%.1f s)", name, len(tally.removed), remaining, tally.seconds)
    skewed = answer_classes.skewed(cfg.dedup.skew_kept_ratio)
    for row in skewed:
        log.warning("curate: %s removed %d of %d problems of question %r with answer %r, far more than of the rest "
                    "(report.md: answer skew)", " and ".join(row.removed_by), row.input - row.kept, row.input,
                    row.question, row.answer)

    # The model steps and balance work on the records; the model steps re-read images batch by batch.
    generators = ModelGenerators(cfg.model, cfg.generation, ranks.local_rank, seed=ranks.rank)
    setup = SamplingSetup(
        cache_dir=Path(cfg.output) / "cache",
        problems_per_batch=cfg.generation.problems_per_batch,
        ranks=ranks,
        model_fingerprint=model_fingerprint(cfg),
        load=source.select,
    )
    scored_by_difficulty: list[Problem] = []

    def run_hackable(ps: list[Problem]) -> StepResult:
        fn = given.get("hackable") or generators.generate_fn(
            cfg.hackable.template, cfg.hackable.max_new_tokens, cfg.hackable.response_prefix
        )
        return filter_hackable(ps, cfg.hackable, fn, setup)

    def run_blind(ps: list[Problem]) -> StepResult:
        fn = given.get("blind") or generators.generate_fn(cfg.blind.template, cfg.blind.max_new_tokens)
        return filter_blind(ps, cfg.blind, fn, setup)

    def run_difficulty(ps: list[Problem]) -> StepResult:
        fn = given.get("difficulty") or generators.generate_fn(cfg.difficulty.template, cfg.difficulty.max_new_tokens)
        scored = measure_pass_rates(ps, cfg.difficulty, fn, setup)
        scored_by_difficulty.extend(scored)  # the "before" of the difficulty histogram
        return drop_by_pass_rate(scored, cfg.difficulty)

    presample = cfg.balance.presample
    record_steps: list[tuple[str, bool, Callable[[list[Problem]], StepResult]]] = [
        ("presample", presample > 0, lambda ps: balance_step.balance(ps, cfg.balance, presample, "presample")),
        ("hackable", cfg.hackable.enabled, run_hackable),
        ("blind", cfg.blind.enabled, run_blind),
        ("difficulty", cfg.difficulty.enabled, run_difficulty),
        ("balance", cfg.balance.enabled, lambda ps: balance_step.balance(ps, cfg.balance)),
    ]
    current = records
    for name, enabled, run in record_steps:
        if not enabled:
            summaries.append(StepSummary(name, enabled=False, kept=len(current)))
            continue
        start = time.perf_counter()
        current, removed = run(current)
        seconds = time.perf_counter() - start
        removed_all += removed
        summaries.append(
            StepSummary(name, True, len(removed), len(current), _removed_by_kind(removed), round(seconds, 3))
        )
        log.info("curate: %-12s removed %6d, kept %6d (%.1f s)", name, len(removed), len(current), seconds)
    generators.close()

    report = CurationReport(
        input=num_input,
        output=len(current),
        steps=summaries,
        domains_before=sorted_counts(domains_before),
        domains_after=sorted_counts(Counter(balance_step.domain_of(p) for p in current)),
        skipped_corrupt=source.skipped.count,
        skewed_classes=[asdict(row) for row in skewed],
        **_difficulty_counts(buckets_before, scored_by_difficulty, current, cfg),
    )
    if ranks.is_main:
        _write_outputs(cfg, source, current, report, removed_all)
    return report


def _difficulty_counts(
    buckets_before: Counter[str], scored: Sequence[Problem], output: Sequence[Problem], cfg: CurateConfig
) -> dict[str, object]:
    """Pass-rate histograms (scored by the difficulty step vs output), or difficulty buckets (input vs output)."""
    if cfg.difficulty.enabled:
        return {
            "difficulty_basis": "pass_rate",
            "difficulty_before": pass_rate_histogram(scored),
            "difficulty_after": pass_rate_histogram(output),
        }

    buckets_after = Counter(balance_step.difficulty_bucket(p, cfg.balance) for p in output)
    return {
        "difficulty_basis": "bucket",
        "difficulty_before": sorted_counts(buckets_before, DIFFICULTY_ORDER),
        "difficulty_after": sorted_counts(buckets_after, DIFFICULTY_ORDER),
    }


def _write_outputs(
    cfg: CurateConfig, source: InputShards, kept: Sequence[Problem], report: CurationReport,
    removed: Sequence[Removal],
) -> None:
    out_dir = Path(cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A previous run may have written more shards; a reader of the directory would pick the stale ones up.
    for stale in out_dir.glob("shard-*.tar"):
        stale.unlink()
    shards = write_shards(source.select(kept), out_dir, cfg.shard_size)  # images read back from the input
    report.shards = [str(p) for p in shards]
    write_report(report, removed, out_dir)
    save_config(cfg, out_dir)
    log.info("curate: wrote %d problems in %d shard(s) and the report to %s", len(kept), len(shards), out_dir)
