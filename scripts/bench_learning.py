"""Does the stack learn? Run the whole quickstart for several seeds and print base / SFT / RL held-out accuracy.

    python scripts/bench_learning.py [--seeds 0,1,2] [--out runs/bench_learning] [--ranks 2]

Each seed changes the synthetic training data, the tiny model's initialisation and the training order;
every seed is scored on the same held-out problems (scripts/quickstart.sh --heldout-seed). The
table gives each seed's accuracy per stage, then the mean and the spread (max - min) over seeds,
and a last line says whether RL beats SFT by more than the spread between seeds: the mean gain
must exceed the larger of the SFT and RL spreads, and RL must gain on every seed.
"""

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

STAGES = ("base", "sft", "rl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_learning"))
    parser.add_argument("--ranks", type=int, default=2)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results, minutes = {}, {}
    for seed in seeds:
        out = args.out / f"seed{seed}"
        summary_file = out / "summary.json"
        if not summary_file.is_file():  # finished seeds are reused, so an interrupted benchmark resumes
            start = time.perf_counter()
            subprocess.run(["bash", "scripts/quickstart.sh", "--out", str(out), "--seed", str(seed),
                            "--ranks", str(args.ranks)], check=True)
            minutes[seed] = (time.perf_counter() - start) / 60
        results[seed] = json.loads(summary_file.read_text())

    print("| seed | base | SFT | RL | RL - SFT | minutes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for seed, summary in results.items():
        acc = [summary[s]["accuracy"] for s in STAGES]
        took = f"{minutes[seed]:.1f}" if seed in minutes else "(cached)"
        print(f"| {seed} | {acc[0]:.3f} | {acc[1]:.3f} | {acc[2]:.3f} | {acc[2] - acc[1]:+.3f} | {took} |")
    columns = {s: [results[seed][s]["accuracy"] for seed in seeds] for s in STAGES}
    gains = [r - s for r, s in zip(columns["rl"], columns["sft"])]
    mean = {s: statistics.mean(v) for s, v in columns.items()}
    spread = {s: max(v) - min(v) for s, v in columns.items()}
    print(f"| mean | {mean['base']:.3f} | {mean['sft']:.3f} | {mean['rl']:.3f} | {statistics.mean(gains):+.3f} | |")
    print(f"| spread (max - min) | {spread['base']:.3f} | {spread['sft']:.3f} | {spread['rl']:.3f} | "
          f"{max(gains) - min(gains):.3f} | |")
    gain, noise = statistics.mean(gains), max(spread["sft"], spread["rl"])
    beats = gain > noise and min(gains) > 0
    print(f"\nRL - SFT: {gain:+.3f} on average, {min(gains):+.3f} at worst; seed spread (larger of SFT and RL): "
          f"{noise:.3f}. RL beats SFT by more than the seed spread: {'yes' if beats else 'no'}")
    (args.out / "bench_learning.json").write_text(json.dumps(
        {"seeds": seeds, "accuracy": columns, "mean": mean, "spread": spread, "rl_minus_sft": gains,
         "rl_beats_sft_beyond_spread": beats}, indent=2) + "\n")


if __name__ == "__main__":
    main()
