"""Build the long-CoT warmup set: problems in, verified replies out (shards + report).

    python data_prep/build_warmup.py --config configs/quickstart/warmup.yaml [input=DIR output=DIR ...]
    deepspeed --num_gpus 8 data_prep/build_warmup.py --config configs/warmup.yaml

Every rank reads the whole input (the first `limit` problems within `family_limits`). The rejection
source splits its problems over the ranks and merges them through part files
(see `rejection`); rank 0 alone renders the template source and writes the
output directory:

    shard-000000.tar ...   one record per kept reply: the input Problem with `solution` = the full
                           assistant reply and meta["warmup_source"] = template | rejection
    report.json            kept/total per source and per family, why problems and replies were dropped
    report.md              the same as tables
    config.yaml            the resolved config
    rejection_parts/       the teacher's sampled replies per rank (reused by a restarted run)

A problem's family is meta["family"], else meta["subject"], else "unknown".
"""

from __future__ import annotations

import datetime
import itertools
import json
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from mmreason.config import save_config
from mmreason.data.shards import ShardError, SkipCounter, stream_problems, write_shards
from mmreason.problem import Problem
from mmreason.warmup.config import SOURCES, WarmupConfig, WarmupError
from mmreason.warmup.rejection import (
    PARTS_DIR,
    Teacher,
    Trace,
    read_parts,
    rejection_records,
    sample_share,
    settings_fingerprint,
)
from mmreason.warmup.template import template_reply

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- report


@dataclass
class SourceTally:
    """What one source did with the problems it saw."""

    problems: int = 0
    """Problems the source looked at."""
    kept: int = 0
    """Problems that got at least one record."""
    records: int = 0
    """Records written (keep: all can write several per problem)."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Problems without a record, by reason (no_solution, not_verified:wrong, no_accepted_reply, ...)."""
    reflected: int = 0
    """template: records whose reply contains a slip and its correction."""
    sampled: int = 0
    """rejection: replies sampled (problems x num_samples)."""
    accepted: int = 0
    """rejection: replies with format 1 and accuracy 1."""
    rejected_replies: dict[str, int] = field(default_factory=dict)
    """rejection: replies not accepted, by reason (bad_format, or not_verified:<verifier reason>)."""


@dataclass
class WarmupReport:
    input: int
    """Problems traced from (after `family_limits` and `limit`)."""
    output: int
    """Records written to the shards."""
    sources: dict[str, SourceTally]
    families: dict[str, dict[str, dict[str, int]]]
    """family -> source -> {"total": problems seen, "kept": problems with a record}."""
    skipped_corrupt: int = 0
    """Input samples that could not be decoded (logged by the shard reader)."""
    over_family_limit: dict[str, int] = field(default_factory=dict)
    """family -> input problems passed over because `family_limits` was reached (before `limit` was)."""
    shards: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def family_of(problem: Problem) -> str:
    return str(problem.meta.get("family") or problem.meta.get("subject") or "unknown")


def _count(counter: dict[str, int], key: str, n: int = 1) -> None:
    counter[key] = counter.get(key, 0) + n


def rejected_reason(trace: Trace) -> str:
    return "bad_format" if trace.format != 1.0 else f"not_verified:{trace.reason}"


def render_markdown(report: WarmupReport) -> str:
    """report.md: one table per concern, kept/total everywhere."""
    lines = ["# Warmup data report", "",
             f"{report.input} problems in, {report.output} records out in {len(report.shards)} shard(s)."]
    if report.skipped_corrupt:
        lines.append(f"{report.skipped_corrupt} corrupt input samples skipped.")
    for family, n in report.over_family_limit.items():
        lines.append(f"{n} {family} problems passed over: config key family_limits.{family} was reached.")
    lines += ["", "## Sources", "", "| source | kept / problems | records | dropped |", "| --- | --- | --- | --- |"]
    for name, tally in report.sources.items():
        dropped = ", ".join(f"{reason}: {n}" for reason, n in sorted(tally.dropped.items())) or "-"
        lines.append(f"| {name} | {tally.kept} / {tally.problems} | {tally.records} | {dropped} |")
    if "template" in report.sources:
        tally = report.sources["template"]
        lines += ["", f"Template replies with a reflection (slip + correction): {tally.reflected} of {tally.records}."]
    if "rejection" in report.sources:
        tally = report.sources["rejection"]
        lines += ["", f"Rejection sampling: {tally.accepted} of {tally.sampled} sampled replies accepted "
                  "(format 1 and accuracy 1)."]
        if tally.rejected_replies:
            lines += ["", "| rejected reply reason | replies |", "| --- | --- |"]
            by_count = sorted(tally.rejected_replies.items(), key=lambda kv: -kv[1])
            lines += [f"| {reason} | {n} |" for reason, n in by_count]
    sources = list(report.sources)
    lines += ["", "## Families (kept / total problems)", "",
              "| family | " + " | ".join(sources) + " |", "| --- |" + " --- |" * len(sources)]
    for family, per_source in sorted(report.families.items()):
        cells = [f"{per_source[s]['kept']} / {per_source[s]['total']}" if s in per_source else "-" for s in sources]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: WarmupReport, out_dir: Path) -> None:
    (out_dir / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    (out_dir / "report.md").write_text(render_markdown(report))


# ---------------------------------------------------------------- ranks


@dataclass
class Ranks:
    """This process's place among the ranks, and how it waits for the others."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    wait_for_all: Callable[[], None] = field(default=lambda: None)
    close: Callable[[], None] = field(default=lambda: None)
    """Leave the process group this process joined (nothing for one process)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def join_ranks(timeout_minutes: int) -> Ranks:
    """One process, unless a launcher set RANK (deepspeed, torchrun): then join the process group.

    The group's default timeout (DeepSpeed: 10 minutes) is far shorter than the
    time a slow rank may take to sample its share, so the ranks wait for each
    other on a gloo group of their own with `timeout_minutes`.
    """
    if "RANK" not in os.environ:
        return Ranks()
    import torch.distributed as dist

    from mmreason.distributed import init_distributed

    rank, world_size = init_distributed()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    group = dist.new_group(backend="gloo", timeout=datetime.timedelta(minutes=timeout_minutes))

    def close() -> None:
        # Every rank waits until rank 0 has written the output, then all leave together:
        # a rank exiting alone leaves the others' process-group teardown waiting on it.
        dist.barrier(group=group)
        dist.destroy_process_group()

    return Ranks(rank, world_size, local_rank, lambda: dist.barrier(group=group), close)


# ---------------------------------------------------------------- pipeline


def load_problems(spec: str, limit: int, family_limits: Mapping[str, int] | None = None
                  ) -> tuple[list[Problem], int, dict[str, int]]:
    """The first `limit` input problems (all when 0) that fit within `family_limits`, the number of corrupt
    samples skipped and, per capped family, the problems passed over."""
    skipped = SkipCounter()
    family_limits = family_limits or {}
    taken: Counter[str] = Counter()
    passed_over: Counter[str] = Counter()

    def within_family_limit(problem: Problem) -> bool:
        family = family_of(problem)
        if family in family_limits and taken[family] >= family_limits[family]:
            passed_over[family] += 1
            return False
        taken[family] += 1
        return True

    try:
        stream = filter(within_family_limit, stream_problems(spec, rank=0, world_size=1, skipped=skipped))
        problems = list(itertools.islice(stream, limit) if limit else stream)
    except (FileNotFoundError, ValueError, ShardError) as err:
        raise WarmupError(f"config key 'input' ({spec!r}): {err}") from err
    seen: set[str] = set()
    for problem in problems:
        if problem.pid in seen:
            raise WarmupError(f"input {spec!r}: pid {problem.pid!r} appears twice; pids must be unique")
        seen.add(problem.pid)
    return problems, skipped.count, dict(sorted(passed_over.items()))


def template_records(problems: Sequence[Problem], cfg: WarmupConfig, tally: SourceTally,
                     families: dict[str, dict[str, dict[str, int]]]) -> dict[str, Problem]:
    """pid -> the template record of each problem whose rendered reply verifies; tallies the rest."""
    records = {}
    for problem in problems:
        result = template_reply(problem, cfg.template, cfg.seed)
        tally.problems += 1
        counts = families.setdefault(family_of(problem), {}).setdefault("template", {"total": 0, "kept": 0})
        counts["total"] += 1
        if result.reply is None:
            _count(tally.dropped, result.reason)
            continue
        meta = dict(problem.meta, warmup_source="template", reflection=result.reflected)
        records[problem.pid] = problem.copy(solution=result.reply, meta=meta)
        tally.kept += 1
        tally.records += 1
        tally.reflected += result.reflected
        counts["kept"] += 1
    return records


def sample_rejection(problems: Sequence[Problem], cfg: WarmupConfig, ranks: Ranks) -> dict[str, list[Trace]] | None:
    """Sample this rank's share, wait for every rank; rank 0 gets pid -> traces for all problems, others None."""
    from mmreason.engine import seed_everything

    key = settings_fingerprint(cfg.rejection, cfg.seed)
    parts_dir = Path(cfg.output) / PARTS_DIR
    seed_everything(cfg.seed + ranks.rank)  # each rank samples different replies, reproducibly
    teacher = Teacher(cfg.rejection, ranks.local_rank, seed=cfg.seed + ranks.rank)
    sample_share(problems, teacher, cfg.rejection, parts_dir=parts_dir, rank=ranks.rank,
                 world_size=ranks.world_size, key=key)
    teacher.close()
    ranks.wait_for_all()
    if not ranks.is_main:
        return None
    traces = read_parts(parts_dir, key)
    missing = [p.pid for p in problems if p.pid not in traces]
    if missing:
        raise WarmupError(
            f"rejection: after all {ranks.world_size} rank(s) finished, {len(missing)} problems have no sampled "
            f"replies (first: {missing[:5]}); a rank failed or {str(parts_dir)!r} is not shared between ranks"
        )
    return traces


def rejection_tally(problems: Sequence[Problem], traces: dict[str, list[Trace]], cfg: WarmupConfig,
                    tally: SourceTally, families: dict[str, dict[str, dict[str, int]]]) -> dict[str, list[Problem]]:
    """pid -> the kept rejection records of each problem; tallies replies and problems."""
    records = {}
    teacher = cfg.rejection.model.path
    for problem in problems:
        problem_traces = traces[problem.pid]
        kept = rejection_records(problem, problem_traces, cfg.rejection.keep, teacher)
        tally.problems += 1
        tally.sampled += len(problem_traces)
        for trace in problem_traces:
            if trace.accepted:
                tally.accepted += 1
            else:
                _count(tally.rejected_replies, rejected_reason(trace))
        counts = families.setdefault(family_of(problem), {}).setdefault("rejection", {"total": 0, "kept": 0})
        counts["total"] += 1
        if not kept:
            _count(tally.dropped, "no_accepted_reply")
            continue
        records[problem.pid] = kept
        tally.kept += 1
        tally.records += len(kept)
        counts["kept"] += 1
    return records


def run_warmup(cfg: WarmupConfig, ranks: Ranks | None = None) -> WarmupReport | None:
    """Build the warmup set from cfg.input into cfg.output; returns the report on rank 0 (None on other ranks).

    ranks: defaults to the launcher's process group when RANK is set, else one process.
    """
    if ranks is not None:
        return _run(cfg, ranks)
    ranks = join_ranks(cfg.rejection.dist_timeout_minutes)
    report = _run(cfg, ranks)
    ranks.close()  # not on an error: the launcher stops the other ranks when one fails
    return report


def _run(cfg: WarmupConfig, ranks: Ranks) -> WarmupReport | None:
    problems, skipped_corrupt, over_family_limit = load_problems(cfg.input, cfg.limit, cfg.family_limits)
    log.info("warmup: %d problems from %s (%d corrupt samples skipped, passed over at family_limits: %s); "
             "sources %s", len(problems), cfg.input, skipped_corrupt, over_family_limit or "none", cfg.sources)

    traces = sample_rejection(problems, cfg, ranks) if "rejection" in cfg.sources else None
    if not ranks.is_main:
        return None

    tallies = {name: SourceTally() for name in SOURCES if name in cfg.sources}
    families: dict[str, dict[str, dict[str, int]]] = {}
    from_template = template_records(problems, cfg, tallies["template"], families) if "template" in tallies else {}
    from_rejection = {}
    if traces is not None:
        from_rejection = rejection_tally(problems, traces, cfg, tallies["rejection"], families)
    records = []
    for problem in problems:  # input order; a problem's template record first, then its teacher replies
        if problem.pid in from_template:
            records.append(from_template[problem.pid])
        records.extend(from_rejection.get(problem.pid, []))

    report = WarmupReport(input=len(problems), output=len(records), sources=tallies,
                          families=dict(sorted(families.items())), skipped_corrupt=skipped_corrupt,
                          over_family_limit=over_family_limit)
    out_dir = Path(cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A previous run may have written more shards; a reader of the directory would pick the stale ones up.
    for stale in out_dir.glob("shard-*.tar"):
        stale.unlink()
    report.shards = [str(path) for path in write_shards(records, out_dir, cfg.shard_size)]
    write_report(report, out_dir)
    save_config(cfg, out_dir)
    for name, tally in tallies.items():
        log.info("warmup: %-9s kept %d of %d problems (%d records); dropped %s", name, tally.kept, tally.problems,
                 tally.records, dict(Counter(tally.dropped).most_common()))
    return report


__all__ = [
    "SourceTally",
    "WarmupReport",
    "Ranks",
    "family_of",
    "join_ranks",
    "load_problems",
    "render_markdown",
    "run_warmup",
]
