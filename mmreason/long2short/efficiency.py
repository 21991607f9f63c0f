"""Token efficiency (Kimi k1.5's long2short comparison): held-out accuracy against mean response length in tokens,
one point per checkpoint, read from MathVista evaluator output directories (scores.json + generation.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple, Sequence


class Point(NamedTuple):
    name: str
    accuracy: float
    """Held-out accuracy in [0, 1]."""
    response_length: float
    """Mean response length in generated tokens."""


def read_point(eval_dir: str | Path, name: str | None = None) -> Point:
    """The point of one evaluation: overall accuracy from scores.json, mean length from generation.json."""
    eval_dir = Path(eval_dir)
    for required in ("scores.json", "generation.json"):
        if not (eval_dir / required).is_file():
            raise FileNotFoundError(f"{eval_dir}: no {required} (run `python -m mmreason.eval.cli run` first)")
    scores = json.loads((eval_dir / "scores.json").read_text())
    generation = json.loads((eval_dir / "generation.json").read_text())
    if generation.get("response_length") is None:
        raise ValueError(f"{eval_dir}/generation.json has no response_length")
    return Point(name or eval_dir.name, float(scores["overall"]["accuracy"]), float(generation["response_length"]))


def table(points: Sequence[Point], baseline: str | None = None) -> str:
    """Markdown table; with `baseline` (a point's name) also the length change and accuracy change against it."""
    base = next((p for p in points if p.name == baseline), None)
    header = "| checkpoint | accuracy (%) | mean response tokens |"
    rule = "| --- | ---: | ---: |"
    if base is not None:
        header += " length vs " + base.name + " | accuracy vs " + base.name + " (points) |"
        rule += " ---: | ---: |"
    lines = [header, rule]
    for p in points:
        row = f"| {p.name} | {p.accuracy * 100:.1f} | {p.response_length:.1f} |"
        if base is not None:
            row += (f" {(p.response_length / base.response_length - 1) * 100:+.1f}% |"
                    f" {(p.accuracy - base.accuracy) * 100:+.1f} |")
        lines.append(row)
    return "\n".join(lines) + "\n"


def plot(points: Sequence[Point], path: str | Path, title: str = "Token efficiency") -> Path:
    """Scatter of accuracy (%) against mean response length, each point labelled."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for i, p in enumerate(points):  # labels alternate above and below their point, so near points stay readable
        ax.scatter([p.response_length], [p.accuracy * 100], s=40)
        ax.annotate(p.name, (p.response_length, p.accuracy * 100), textcoords="offset points",
                    xytext=(5, 5 if i % 2 == 0 else -12))
    ax.set_xlabel("mean response length (tokens)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def to_json(points: Sequence[Point]) -> dict[str, Any]:
    return {p.name: {"accuracy": p.accuracy, "response_length": p.response_length} for p in points}
