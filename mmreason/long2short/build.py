"""Shortest rejection sampling and DPO pairs (Kimi k1.5 long2short): problems in, two shard sets out.

    python data_prep/build_long2short.py --config configs/quickstart/long2short.yaml [key=value ...]
    deepspeed --num_gpus N data_prep/build_long2short.py --config ... (the problems are split over the ranks)

Every rank samples `sampling.num_samples` replies for its share of the problems (either engine) and appends them,
judged by the reward's verifier, to rejection_parts/rank<r>.jsonl (the warmup rejection source's part files: a
restarted run resumes where it stopped). Rank 0 then writes

    sft/shard-*.tar    one record per problem with a correct reply: `solution` = its shortest correct reply
    dpo/shard-*.tar    one record per pair: `solution` = the shortest correct reply, meta["rejected"] = a wrong
                       reply or a correct one more than length_ratio x longer (mmreason/long2short/pairs.py)
    report.json, report.md, config.yaml
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

from mmreason.config import save_config
from mmreason.data.shards import write_shards
from mmreason.long2short.config import Long2ShortConfig
from mmreason.long2short.pairs import negatives, pair_records, shortest_correct, shortest_record
from mmreason.problem import Problem
from mmreason.warmup.build import Ranks, join_ranks, load_problems
from mmreason.warmup.config import WarmupError
from mmreason.warmup.rejection import PARTS_DIR, Teacher, Trace, read_parts, sample_share, settings_fingerprint

log = logging.getLogger(__name__)


def summarize(problems: Sequence[Problem], traces: dict[str, list[Trace]], cfg: Long2ShortConfig) -> dict[str, Any]:
    """Counts and mean lengths: what the sampler produced, what shortest-RS keeps and what the pairs hold."""
    replies = [t for p in problems for t in traces[p.pid]]
    accepted = [t for t in replies if t.accepted]
    solved = [p for p in problems if shortest_correct(traces[p.pid]) is not None]
    shortest = [traces[p.pid][shortest_correct(traces[p.pid])].num_tokens for p in solved]
    wrong = long = 0
    for p in solved:
        for i in negatives(traces[p.pid], cfg.length_ratio):
            if traces[p.pid][i].accepted:
                long += 1
            else:
                wrong += 1

    def mean(values: Sequence[float]) -> float | None:
        return round(sum(values) / len(values), 2) if values else None

    return {
        "problems": len(problems),
        "replies": len(replies),
        "accepted_replies": len(accepted),
        "problems_with_a_correct_reply": len(solved),
        "sft_records": len(solved),
        "dpo_negatives_wrong": wrong,
        "dpo_negatives_too_long": long,
        "mean_reply_tokens": mean([t.num_tokens for t in replies]),
        "mean_correct_reply_tokens": mean([t.num_tokens for t in accepted]),
        "mean_shortest_correct_tokens": mean(shortest),
        "length_ratio": cfg.length_ratio,
    }


def render_markdown(report: dict[str, Any]) -> str:
    lines = ["# long2short data", "", "| | |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in report.items() if not isinstance(value, (list, dict))]
    return "\n".join(lines) + "\n"


def run_long2short(cfg: Long2ShortConfig, ranks: Ranks | None = None) -> dict[str, Any] | None:
    """Sample, judge and write; returns the report on rank 0 (None on other ranks)."""
    own = ranks is None
    ranks = ranks or join_ranks(cfg.sampling.dist_timeout_minutes)
    from mmreason.engine import seed_everything

    problems, skipped, _ = load_problems(cfg.input, cfg.limit)
    out = Path(cfg.output)
    key = settings_fingerprint(cfg.sampling, cfg.seed)
    seed_everything(cfg.seed + ranks.rank)
    teacher = Teacher(cfg.sampling, ranks.local_rank, seed=cfg.seed + ranks.rank)
    sample_share(problems, teacher, cfg.sampling, parts_dir=out / PARTS_DIR, rank=ranks.rank,
                 world_size=ranks.world_size, key=key)
    teacher.close()
    ranks.wait_for_all()
    report = None
    if ranks.is_main:
        traces = read_parts(out / PARTS_DIR, key)
        missing = [p.pid for p in problems if p.pid not in traces]
        if missing:
            raise WarmupError(f"long2short: {len(missing)} problems have no sampled replies (first: {missing[:5]})")
        teacher_path = cfg.sampling.model.path
        sft = [r for p in problems if (r := shortest_record(p, traces[p.pid], teacher_path)) is not None]
        dpo = [r for p in problems for r in pair_records(p, traces[p.pid], teacher_path, cfg.length_ratio,
                                                         cfg.max_pairs_per_problem)]
        for name, records in (("sft", sft), ("dpo", dpo)):
            write_shards(records, out / name, cfg.shard_size)  # replaces a previous run's shards
        report = {**summarize(problems, traces, cfg), "dpo_pairs": len(dpo), "corrupt_skipped": skipped}
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "report.md").write_text(render_markdown(report))
        save_config(cfg, out)
        log.info("long2short: %s", report)
    if own:
        ranks.close()
    return report
