"""RL with and without Kimi k1.5 partial rollouts, same steps, same data: step time (mean, p95), generated tokens per
step and held-out accuracy.

    python scripts/bench_partial.py --model runs/quickstart/sft --data runs/quickstart/data \
        [--steps 40] [--segment-tokens 32] [--max-new-tokens 160] [--out runs/bench_partial]

Both runs use configs/quickstart/rl_vision.yaml on 2 DeepSpeed ranks, from the same checkpoint and seed; partial
rollouts cut every trajectory into segments of --segment-tokens, so a step no longer waits for its longest response.
A step's time is the sum of its timed stages (time/* in metrics.jsonl). The last line:
`partial rollouts: p95 step s off X on Y; mean s off A on B; tokens/step off C on D; held-out accuracy off E on F`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(out: Path, model: str, data: Path, steps: int, max_new_tokens: int, extra: list[str]) -> list[dict]:
    from mmreason.ports import free_port

    cmd = ["deepspeed", "--num_gpus", "2", "--master_port", str(free_port()), "mmreason/train.py",
           "--config", "configs/quickstart/rl_vision.yaml", f"model.path={model}", f"data.train={data / 'curated'}",
           f"data.eval={data / 'heldout'}", f"train.output_dir={out}", f"train.max_steps={steps}",
           f"train.save_every={steps}", f"train.eval_every={steps}", f"rollout.max_new_tokens={max_new_tokens}",
           "algo.dynamic_sampling=false", "train.resume=never",
           "eval.num_problems=500", "eval.batch_size=50",  # the whole held-out set: 64 problems are too noisy
           *extra]
    subprocess.run(cmd, cwd=REPO, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def summary(metrics: list[dict]) -> dict[str, float]:
    step_times = [sum(v for k, v in m.items() if k.startswith("time/")) for m in metrics]
    return {
        "mean_step_s": statistics.mean(step_times),
        "p95_step_s": percentile(step_times, 0.95),
        "tokens_per_step": statistics.mean(m["rollout/tokens_generated"] for m in metrics),
        "heldout_accuracy": metrics[-1].get("eval/accuracy", float("nan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the SFT checkpoint RL starts from (an HF directory)")
    parser.add_argument("--data", required=True, type=Path, help="the quickstart data directory (curated/, heldout/)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--segment-tokens", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_partial")
    args = parser.parse_args()
    results = {}
    for name, extra in (("off", []), ("on", ["rollout.partial_enabled=true",
                                            f"rollout.partial_segment_tokens={args.segment_tokens}"])):
        metrics = run(args.out / name, args.model, args.data, args.steps, args.max_new_tokens, extra)
        results[name] = summary(metrics)
        print(name, json.dumps(results[name]), flush=True)
    (args.out / "bench_partial.json").write_text(json.dumps(results, indent=2))
    off, on = results["off"], results["on"]
    print(f"partial rollouts: p95 step s off {off['p95_step_s']:.2f} on {on['p95_step_s']:.2f}; "
          f"mean s off {off['mean_step_s']:.2f} on {on['mean_step_s']:.2f}; "
          f"tokens/step off {off['tokens_per_step']:.0f} on {on['tokens_per_step']:.0f}; "
          f"held-out accuracy off {off['heldout_accuracy']:.3f} on {on['heldout_accuracy']:.3f}")


if __name__ == "__main__":
    sys.exit(main())
