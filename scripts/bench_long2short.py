"""Kimi k1.5's four long2short methods at quickstart scale, on CPU: token efficiency against a long-CoT model.

    python scripts/bench_long2short.py --out DIR [--ranks 2] [--quick]

Stages (each a real command line; times in DIR/timings.json):
  1. data: synthetic counting problems (train + 300 held-out, another seed), the pool cleaned of held-out copies
  2. the long-CoT model: warmup SFT of a fresh tiny checkpoint on template traces that plan, step, check and
     reflect (reflection_prob 0.5: a slip and its "Wait, that is wrong" correction) and restate their check 0-3
     more times, so replies are long and vary in length
  3. a short-CoT model: the long model fine-tuned briefly on plain Plan/Step/Check/Conclude traces (what merging
     averages with)
  4. the methods, each from the long model:
       merge          scripts/merge_models.py --models long short (0.8 / 0.2)
       shortest_rs    data_prep/build_long2short.py (n = 8), then SFT on the shortest correct reply per problem
       dpo            stage dpo on the pairs of the same run (shortest correct vs wrong or > 1.5x longer)
       long2short_rl  configs/quickstart/long2short_rl.yaml (k1.5 length reward from step 0, shorter max length)
     with the settings in scale(), chosen on a validation split (never on the held-out set; docs/long2short.md)
  5. every checkpoint scored on all held-out problems by the MathVista evaluator (greedy), then
     scripts/plot_token_efficiency.py: DIR/long2short.json, DIR/token_efficiency.{md,png}, and
     DIR/token_efficiency_paired.md: each checkpoint's accuracy and length differences from the long model on the
     same problems with their standard errors (sd of the per-problem differences / sqrt(n))

The k1.5 criterion checked at the end: a method cuts the long model's mean response length by >= 30% with
held-out accuracy at most 2 points below it. --quick runs a minutes-long smoke version (numbers meaningless).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAMILIES = "shape_count,geometry,bar_chart"
METHODS = ("merge", "shortest_rs", "dpo", "long2short_rl")
LENGTH_CUT = 0.30
ACCURACY_DROP = 0.02


def scale(quick: bool) -> dict[str, float]:
    # The methods' settings (merge_weight .. rl_lr) were chosen once on a validation split, never on the held-out
    # set: 276 problems of another seed (2000), built like the held-out set and cleaned of copies of the pool and
    # of the held-out set, scored greedily for each candidate made from the run of 2026-12-04's long and short
    # models. Rule: among candidates >= 30% shorter than the long model with validation accuracy at most 2 points
    # below it, the most accurate (ties: the shorter). Candidates and scores: docs/long2short.md.
    chosen = dict(merge_weight=0.8,  # weight of the long model (0.6: 34.8% at 56.5 tokens, 0.7: 34.8% at 62.5)
                  rs_lr=1.0e-4,  # 20 steps of 16 on ~105 shortest replies (3 epochs; was 40 steps at 3e-4)
                  dpo_beta=0.1, dpo_sft_weight=1.0,  # 20 steps (40 steps: 34.4% on validation vs 36.6%)
                  rl_lr=3.0e-5)  # 20 steps (1e-4: 26.4% on validation, 5e-5: 31.9%; long: 34.8%)
    if quick:
        return dict(train=400, heldout=32, eval_limit=32, warmup=120, long_steps=20, short_steps=5, rs_problems=16,
                    rs_steps=5, dpo_steps=4, rl_steps=2, max_new=120, **chosen)
    # Sized for 2 shared CPU cores (one SFT step of 16 sequences: about 1-2.5 s, by the machine's load).
    # Scoring one checkpoint on all 300 held-out problems takes 1-7 minutes by its reply length and the load.
    return dict(train=2000, heldout=300, eval_limit=300, warmup=500, long_steps=300, short_steps=40, rs_problems=128,
                rs_steps=20, dpo_steps=20, rl_steps=20, max_new=200, **chosen)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def paired(base_dir: Path, other_dir: Path) -> dict[str, float]:
    """Paired differences of `other` against `base` on the problems both scored: accuracy (points) and response
    length (tokens), each with its standard error (sd of the per-problem differences / sqrt(n)), and the unpaired
    standard error of `other`'s accuracy."""
    def load(directory: Path) -> dict[str, tuple[float, float]]:
        correct = {r["pid"]: float(r["correct"]) for r in map(json.loads, (directory / "per_problem.jsonl").open())}
        tokens = {r["pid"]: float(r["num_tokens"]) for r in map(json.loads, (directory / "predictions.jsonl").open())}
        return {pid: (correct[pid], tokens[pid]) for pid in correct if pid in tokens}

    base, other = load(base_dir), load(other_dir)
    pids = sorted(set(base) & set(other))
    n = len(pids)

    def mean_se(values: list[float]) -> tuple[float, float]:
        mean = sum(values) / n
        var = sum((v - mean) ** 2 for v in values) / max(n - 1, 1)
        return mean, (var / n) ** 0.5

    acc_diff, acc_se = mean_se([other[p][0] - base[p][0] for p in pids])
    len_diff, len_se = mean_se([other[p][1] - base[p][1] for p in pids])
    acc = sum(other[p][0] for p in pids) / n
    return dict(problems=n, accuracy_diff_points=acc_diff * 100, accuracy_diff_se_points=acc_se * 100,
                length_diff_tokens=len_diff, length_diff_se_tokens=len_se,
                accuracy_se_points=(acc * (1 - acc) / n) ** 0.5 * 100)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_long2short", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke run in minutes (numbers meaningless)")
    parser.add_argument("--resume", action="store_true", help="skip the stages DIR/timings.json lists as done")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    n = scale(args.quick)
    py = [sys.executable]

    def ds() -> list[str]:  # a free port per launch, not the default 29500 another launch on the machine may hold
        return [str(Path(sys.executable).with_name("deepspeed")), "--num_gpus", str(args.ranks), "--master_port",
                str(free_port())]

    done = json.loads((out / "timings.json").read_text()) if args.resume and (out / "timings.json").is_file() else {}
    timings: dict[str, float] = {}
    started = time.perf_counter()
    data = out / "data"

    def run(name: str, cmd: list[str]) -> None:
        if name in done:
            timings[name] = done[name]
            return
        print(f"=== [{time.perf_counter() - started:.0f}s] {name}", flush=True)
        t0 = time.perf_counter()
        log = out / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as fh:
            result = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
        timings[name] = round(time.perf_counter() - t0, 1)
        (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
        if result.returncode != 0:
            print(log.read_text()[-4000:], file=sys.stderr)
            raise SystemExit(f"bench_long2short: stage {name} failed (log: {log})")

    def train(name: str, config: str, model: Path, train_data: Path, *extra: str) -> Path:
        run_dir = out / "runs" / name
        if name not in done:
            shutil.rmtree(run_dir, ignore_errors=True)  # a stage that did not finish starts again
        run(name, [*ds(), "mmreason/train.py", "--config", config, f"model.path={model}", f"data.train={train_data}",
                   "data.eval=null", f"train.output_dir={run_dir}", f"train.seed={args.seed}", "train.resume=never",
                   *extra])
        target = out / name
        if name in done and target.is_dir():
            return target
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(run_dir / "hf" / "latest", target)
        return target

    def evaluate(name: str, model: Path) -> None:
        # one process (a deepspeed launch costs more than it saves on a small held-out set)
        run(f"eval_{name}", [*py, "-m", "mmreason.eval.cli", "run", "--model", str(model), "--data",
                             str(data / "heldout_mathvista.parquet"), "--out", str(out / "eval" / name),
                             "--template", "r1_boxed", "--max-new-tokens", str(n["max_new"]), "--batch-size", "50",
                             "--limit", str(n["eval_limit"])])

    for stale in ("runs", "eval") if not args.resume else ():  # a rerun starts its training runs afresh
        shutil.rmtree(out / stale, ignore_errors=True)

    # ---- 1. data
    run("synth_train", [*py, "data_prep/synth_visual_math.py", "--out", str(data / "train"), "--num", str(n["train"]),
                        "--seed", str(args.seed), "--levels", "1", "--families", FAMILIES, "--shard-size", "500"])
    run("synth_heldout", [*py, "data_prep/synth_visual_math.py", "--out", str(data / "heldout"), "--num",
                          str(n["heldout"]), "--seed", str(args.seed + 1000), "--levels", "1", "--families", FAMILIES,
                          "--mc-frac", "0", "--tf-frac", "0", "--dup-frac", "0", "--near-dup-frac", "0"])
    run("export_heldout", [*py, "data_prep/export_mathvista.py", "--input", str(data / "heldout"), "--out",
                           str(data / "heldout_mathvista.parquet")])
    run("clean_pool", [*py, "data_prep/curate.py", "--config", "configs/quickstart/clean_pool.yaml",
                       f"input={data / 'train'}", f"output={data / 'pool'}", f"eval_sets=[{data / 'heldout'}]"])
    run("curate_rl", [*py, "data_prep/curate.py", "--config", "configs/quickstart/curate.yaml", f"input={data / 'pool'}",
                      f"output={data / 'curated'}"])
    run("base", [*py, "scripts/make_tiny_model.py", "--out", str(out / "base"), "--corpus", str(data / "train"),
                 "--seed", str(args.seed)])

    # ---- 2. the long-CoT model, 3. the short-CoT model
    warmup = ["--config", "configs/quickstart/warmup.yaml", f"input={data / 'pool'}", f"limit={n['warmup']}",
              f"seed={args.seed}"]
    run("warmup_long", [*py, "data_prep/build_warmup.py", *warmup, f"output={data / 'warmup_long'}",
                        "template.reflection_prob=0.5", "template.recheck_max=3"])
    run("warmup_short", [*py, "data_prep/build_warmup.py", *warmup, f"output={data / 'warmup_short'}"])
    sft = "configs/quickstart/sft_warmup.yaml"
    small_batch = ["train.batch_size=16", "train.micro_batch_size=8"]
    long_model = train("long", sft, out / "base", data / "warmup_long", f"train.max_steps={n['long_steps']}",
                       "train.save_every=0", *small_batch)
    evaluate("long", long_model)
    short_model = train("short", sft, long_model, data / "warmup_short", f"train.max_steps={n['short_steps']}",
                        "train.save_every=0", "optim.lr=3.0e-4", "optim.warmup_steps=0", *small_batch)

    # ---- 4. the methods
    run("merge", [*py, "scripts/merge_models.py", "--models", str(long_model), str(short_model), "--weights",
                  str(n["merge_weight"]), str(round(1 - n["merge_weight"], 6)), "--out", str(out / "merge")])
    l2s = data / "long2short"
    run("sample_long2short", [*ds(), "data_prep/build_long2short.py", "--config", "configs/quickstart/long2short.yaml",
                              f"input={data / 'pool'}", f"output={l2s}", f"sampling.model.path={long_model}",
                              f"limit={n['rs_problems']}", f"seed={args.seed}",
                              f"sampling.max_new_tokens={n['max_new']}"])
    train("shortest_rs", sft, long_model, l2s / "sft", f"train.max_steps={n['rs_steps']}", "train.save_every=0",
          f"optim.lr={n['rs_lr']}", "optim.warmup_steps=0", *small_batch)
    train("dpo", "configs/quickstart/dpo.yaml", long_model, l2s / "dpo", f"train.max_steps={n['dpo_steps']}",
          "train.save_every=0", f"dpo.beta={n['dpo_beta']}", f"dpo.sft_weight={n['dpo_sft_weight']}")
    train("long2short_rl", "configs/quickstart/long2short_rl.yaml", long_model, data / "curated",
          f"train.max_steps={n['rl_steps']}", "train.save_every=0", f"optim.lr={n['rl_lr']}")
    for name in ("short", *METHODS):
        evaluate(name, out / name)

    # ---- 5. token efficiency
    names = ["long", "short", *METHODS]
    run("plot", [*py, "scripts/plot_token_efficiency.py", *[f"{m}={out / 'eval' / m}" for m in names], "--out",
                 str(out), "--baseline", "long"])
    points = json.loads((out / "token_efficiency.json").read_text())
    long = points["long"]
    for name in METHODS:
        point = points[name]
        point["length_change"] = point["response_length"] / long["response_length"] - 1
        point["accuracy_change_points"] = (point["accuracy"] - long["accuracy"]) * 100
        point["meets_k15_criterion"] = bool(point["length_change"] <= -LENGTH_CUT
                                            and point["accuracy"] >= long["accuracy"] - ACCURACY_DROP - 1e-9)
    for name in ("short", *METHODS):
        points[name]["paired_vs_long"] = paired(out / "eval" / "long", out / "eval" / name)
    rows = ["| checkpoint | accuracy (%) | mean response tokens | length vs long | accuracy vs long (points, paired SE) "
            "| tokens vs long (paired SE) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name in names:
        point, pair = points[name], points[name].get("paired_vs_long")
        change = point["response_length"] / long["response_length"] - 1
        rows.append(f"| {name} | {point['accuracy'] * 100:.1f} | {point['response_length']:.1f} | {change:+.1%} | "
                    + (f"{pair['accuracy_diff_points']:+.1f} ({pair['accuracy_diff_se_points']:.1f}) | "
                       f"{pair['length_diff_tokens']:+.1f} ({pair['length_diff_se_tokens']:.1f}) |" if pair else
                       "+0.0 | +0.0 |"))
    (out / "token_efficiency_paired.md").write_text("\n".join(rows) + "\n")
    points["data"] = json.loads((l2s / "report.json").read_text())
    points["timings_s"] = {**timings, "total": round(time.perf_counter() - started, 1)}
    points["quick"] = args.quick
    (out / "long2short.json").write_text(json.dumps(points, indent=2) + "\n")
    met = [m for m in METHODS if points[m]["meets_k15_criterion"]]
    print((out / "token_efficiency_paired.md").read_text())
    print(f"methods meeting the criterion (>= 30% shorter, <= 2 points less accurate): {met or 'none'}")
    print(f"bench_long2short: {points['timings_s']['total']:.0f}s; {out / 'long2short.json'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", "/root/.cache/torch_extensions_base")
    sys.exit(main(sys.argv[1:]))
