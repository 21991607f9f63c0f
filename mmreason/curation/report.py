"""What a curation run writes besides the shards: report.json, report.md, removed.jsonl and plots."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmreason.curation.removal import Removal
from mmreason.problem import Problem

DIFFICULTY_ORDER = ("easy", "medium", "hard", "unknown")


@dataclass
class StepSummary:
    """One row of the report's step table."""

    name: str
    enabled: bool
    removed: int = 0
    """Problems this step removed (0 when it is off)."""
    kept: int = 0
    """Problems left after it."""
    removed_by_kind: dict[str, int] = field(default_factory=dict)
    """Removals per kind (exact_duplicate, multiple_choice, solved, ...)."""
    seconds: float = 0.0
    """Wall time of the step (streamed steps: summed over problems, without shard decoding)."""


@dataclass
class CurationReport:
    input: int
    """Problems read from the input shards."""
    output: int
    """Problems written to the curated shards."""
    steps: list[StepSummary]
    domains_before: dict[str, int]
    """Problems per domain in the input (tagged by the same rules as the tagging step)."""
    domains_after: dict[str, int]
    difficulty_basis: str
    """pass_rate: difficulty_* count pass rates (k/N) of the problems the difficulty step scored (before) and
    of the output (after). bucket: the difficulty step was off, they count meta difficulty buckets."""
    difficulty_before: dict[str, int]
    difficulty_after: dict[str, int]
    skipped_corrupt: int = 0
    """Input samples that could not be decoded (logged by the shard reader)."""
    skewed_classes: list[dict[str, Any]] = field(default_factory=list)
    """(question, answer) classes that dedup and decontamination nearly emptied (mmreason.curation.skew)."""
    shards: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sorted_counts(counter: Mapping[str, int], order: Sequence[str] = ()) -> dict[str, int]:
    """Counts in `order` first (as given), then by decreasing count, then by name."""
    first = [k for k in order if k in counter]
    rest = sorted((k for k in counter if k not in first), key=lambda k: (-counter[k], k))
    return {k: int(counter[k]) for k in first + rest}


def pass_rate_histogram(problems: Sequence[Problem]) -> dict[str, int]:
    """Problems per pass rate value ("0.00", "0.10", ...), ascending; problems without one are "unscored"."""
    counts: Counter[str] = Counter()
    for problem in problems:
        rate = problem.meta.get("pass_rate")
        counts[f"{rate:.2f}" if isinstance(rate, (int, float)) else "unscored"] += 1
    return {k: counts[k] for k in sorted(counts, key=lambda k: (k == "unscored", k))}


def write_removed(removed: Sequence[Removal], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for removal in removed:
            out.write(json.dumps(removal.to_json(), ensure_ascii=False) + "\n")


def write_json(report: CurationReport, path: Path) -> None:
    path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _before_after_rows(before: Mapping[str, int], after: Mapping[str, int]) -> list[list[Any]]:
    n_before, n_after = sum(before.values()) or 1, sum(after.values()) or 1
    keys = list(before) + [k for k in after if k not in before]
    return [
        [k, before.get(k, 0), f"{100 * before.get(k, 0) / n_before:.1f}%", after.get(k, 0),
         f"{100 * after.get(k, 0) / n_after:.1f}%"]
        for k in keys
    ]


def render_markdown(report: CurationReport, plots: Mapping[str, str]) -> str:
    lines = [
        "# Prompt-set curation report",
        "",
        f"{report.input} problems in, {report.output} out"
        + (f" ({report.skipped_corrupt} corrupt input samples skipped)" if report.skipped_corrupt else "")
        + ". Per-problem reasons are in `removed.jsonl`.",
        "",
        "## Steps",
        "",
    ]
    rows = []
    for step in report.steps:
        kinds = ", ".join(f"{kind} {count}" for kind, count in step.removed_by_kind.items()) or "-"
        state = "on" if step.enabled else "off"
        rows.append([step.name, state, step.removed if step.enabled else "-", step.kept, kinds, f"{step.seconds:.1f}"])
    lines += _table(["step", "enabled", "removed", "kept", "removed by kind", "seconds"], rows)
    if report.skewed_classes:
        lines += ["", "## Answer skew", "",
                  "Cleaning kept far less of these (question, answer) classes than of the whole input (config keys "
                  "dedup.skew_*). If their images differ in what a perceptual hash cannot see, the cleaned set "
                  "teaches a skewed answer prior: check the source, or lower dedup.max_distance.", ""]
        skew_rows = [[row["question"][:70], row["answer"], row["input"], row["kept"],
                      ", ".join(f"{step} {n}" for step, n in row["removed_by"].items())]
                     for row in report.skewed_classes]
        lines += _table(["question", "answer", "input", "kept", "removed by"], skew_rows)
    lines += ["", "## Domains", ""]
    domain_rows = _before_after_rows(report.domains_before, report.domains_after)
    lines += _table(["domain", "before", "share", "after", "share"], domain_rows)
    basis = "pass rate" if report.difficulty_basis == "pass_rate" else "difficulty bucket"
    lines += ["", f"## Difficulty ({basis})", ""]
    if report.difficulty_basis == "pass_rate":
        lines += ["Before: every problem the difficulty step scored. After: the curated set.", ""]
    difficulty_rows = _before_after_rows(report.difficulty_before, report.difficulty_after)
    lines += _table([basis, "before", "share", "after", "share"], difficulty_rows)
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({file})" for name, file in plots.items()]
    return "\n".join(lines) + "\n"


def plot_before_after(
    before: Mapping[str, int], after: Mapping[str, int], *, title: str, xlabel: str, path: Path
) -> Path:
    """Grouped bars of the share of problems per category, before vs after curation."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a training node
    import matplotlib.pyplot as plt
    import numpy as np

    keys = list(before) + [k for k in after if k not in before]
    n_before, n_after = sum(before.values()) or 1, sum(after.values()) or 1
    x = np.arange(len(keys))
    width = 0.4
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(keys) + 2), 4.0))
    before_share = [100 * before.get(k, 0) / n_before for k in keys]
    after_share = [100 * after.get(k, 0) / n_after for k in keys]
    ax.bar(x - width / 2, before_share, width, label=f"before (n={sum(before.values())})")
    ax.bar(x + width / 2, after_share, width, label=f"after (n={sum(after.values())})")
    ax.set_xticks(x)
    ax.set_xticklabels(keys, rotation=30, ha="right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of problems (%)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(report: CurationReport, removed: Sequence[Removal], out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md, removed.jsonl, domains.png and difficulty.png into out_dir."""
    plots = {
        "domains": plot_before_after(
            report.domains_before, report.domains_after, title="Domain mix before and after curation",
            xlabel="domain", path=out_dir / "domains.png",
        ),
        "difficulty": plot_before_after(
            report.difficulty_before, report.difficulty_after,
            title="Difficulty before and after curation",
            xlabel="pass rate (correct / samples)" if report.difficulty_basis == "pass_rate" else "difficulty bucket",
            path=out_dir / "difficulty.png",
        ),
    }
    write_removed(removed, out_dir / "removed.jsonl")
    write_json(report, out_dir / "report.json")
    (out_dir / "report.md").write_text(render_markdown(report, {k: p.name for k, p in plots.items()}), encoding="utf-8")
    return {"report.json": out_dir / "report.json", "report.md": out_dir / "report.md",
            "removed.jsonl": out_dir / "removed.jsonl", **{f"{k}.png": p for k, p in plots.items()}}
