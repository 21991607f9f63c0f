"""Rollout throughput: the hf engine (transformers `generate`) against the vllm engine, on the same prompts.

    python scripts/bench_rollout.py [--model CKPT] [--data SHARDS] [--rounds 3]

Needs vLLM (run it in the engine's virtualenv: `bash scripts/install_vllm.sh`). Prompts are quickstart data
(`--data`, default runs/quickstart/data/heldout; built with the quickstart's synthesizer when missing), 32 prompts x
8 samples at temperature 1, for 64 and 256 new tokens, at natural lengths (stop at EOS) and forced lengths (EOS
barred until the limit). Each setting runs both engines alternately, `--rounds` times each; tokens/s is response
tokens over wall time of the engine's generate calls. hf generates `--hf-batch-rows` rows per call (as
rollout.generation_batch_size does in RL); vllm takes all prompts at once and schedules them itself. Greedy
agreement: one greedy response per prompt from each engine at each length, compared token for token.
The model is `--model` (default the quickstart's SFT checkpoint) or, when missing, a freshly built tiny checkpoint.
Last line: `rollout tokens/s: hf X vllm Y ratio Z; greedy agreement A/B`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmreason.config import ModelConfig, RolloutConfig  # noqa: E402
from mmreason.data.shards import stream_problems  # noqa: E402
from mmreason.engines import HFEngine, build_engine  # noqa: E402
from mmreason.generation import Generation, Prompts, encode  # noqa: E402
from mmreason.models import load_policy  # noqa: E402


def ensure_inputs(args: argparse.Namespace, scratch: Path) -> tuple[str, str]:
    data, model = args.data, args.model
    if not Path(data).exists():
        data = str(scratch / "data")
        print(f"{args.data} missing: synthesizing {args.prompts} quickstart problems into {data}", flush=True)
        subprocess.run([sys.executable, "data_prep/synth_visual_math.py", "--out", data, "--num", str(max(args.prompts, 64)),
                        "--seed", "2", "--levels", "1", "--mc-frac", "0", "--tf-frac", "0", "--dup-frac", "0",
                        "--near-dup-frac", "0"], cwd=REPO, check=True, capture_output=True)
    if not (Path(model) / "config.json").is_file():
        model = str(scratch / "ckpt")
        print(f"{args.model} missing: building the tiny checkpoint into {model}", flush=True)
        subprocess.run([sys.executable, "scripts/make_tiny_model.py", "--out", model, "--corpus", data], cwd=REPO,
                       check=True, capture_output=True)
    return data, model


def run_engine(engine, model, processor, prompts: Prompts, *, samples: int, max_new: int, forced: bool,
               rows_per_call: int | None, temperature: float = 1.0) -> tuple[list[Generation], float]:
    """All prompts through `engine` (in chunks of rows_per_call rows, or at once); (outputs, seconds)."""
    n = prompts.batch.input_ids.shape[0]
    step = n if rows_per_call is None else max(1, rows_per_call // samples)
    outs = []
    start = time.perf_counter()
    for i in range(0, n, step):
        part = slice_prompts(prompts, i, i + step)
        outs.append(engine.generate(model, processor, part, num_samples=samples, temperature=temperature,
                                    max_new_tokens=max_new, min_new_tokens=max_new if forced else 0))
    return outs, time.perf_counter() - start


def slice_prompts(prompts: Prompts, a: int, b: int) -> Prompts:
    """Rows a:b of encoded prompts (their images and patches with them), left padding trimmed to the longest row."""
    batch = prompts.batch
    mask = batch.attention_mask[a:b]
    width = int(mask.sum(1).max())
    pixel_values = grid = None
    if batch.image_grid_thw is not None:
        counts = [len(x) for x in prompts.images]
        first, last = sum(counts[:a]), sum(counts[:b])
        patches = batch.image_grid_thw.prod(dim=1)
        grid = batch.image_grid_thw[first:last] if last > first else None
        lo, hi = int(patches[:first].sum()), int(patches[:last].sum())
        pixel_values = batch.pixel_values[lo:hi] if hi > lo else None
    part = type(batch)(batch.input_ids[a:b, -width:], mask[:, -width:], pixel_values, grid)
    return Prompts(part, prompts.images[a:b])


def tokens(outs: list[Generation]) -> int:
    return int(sum(o.response_mask.sum() for o in outs))


def rows(outs: list[Generation]) -> list[list[int]]:
    return [r[m.bool()].tolist() for o in outs for r, m in zip(o.response_ids, o.response_mask)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/quickstart/sft")
    parser.add_argument("--data", default="runs/quickstart/data/heldout")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hf-batch-rows", type=int, default=64, help="rows per hf generate call")
    parser.add_argument("--template", default="r1_boxed")
    args = parser.parse_args()

    torch.manual_seed(0)
    scratch = Path(tempfile.mkdtemp(prefix="bench_rollout-"))
    data, model_path = ensure_inputs(args, scratch)
    problems = []
    for p in stream_problems(data, rank=0, world_size=1):
        problems.append(p)
        if len(problems) == args.prompts:
            break
    model, processor = load_policy(ModelConfig(path=model_path, dtype="float32"))
    model.eval()
    prompts = encode(processor, problems, args.template, with_images=True)
    print(f"model {model_path}  data {data}  {len(problems)} prompts x {args.samples} samples  "
          f"torch threads {torch.get_num_threads()}", flush=True)
    start = time.perf_counter()
    vllm = build_engine(RolloutConfig(engine="vllm"), model_path=model_path, processor=processor, model=model, seed=0)
    print(f"vllm engine start: {time.perf_counter() - start:.0f} s", flush=True)
    hf = HFEngine()

    for engine, chunk in ((hf, args.hf_batch_rows), (vllm, None)):  # untimed warm-up (allocator, compiled shapes)
        run_engine(engine, model, processor, prompts, samples=args.samples, max_new=16, forced=True, rows_per_call=chunk)
    totals = {"hf": [0, 0.0], "vllm": [0, 0.0]}
    for max_new in args.lengths:
        for forced in (False, True):
            per = {"hf": [], "vllm": []}
            for r in range(args.rounds):
                for name, engine, chunk in (("hf", hf, args.hf_batch_rows), ("vllm", vllm, None)):
                    outs, secs = run_engine(engine, model, processor, prompts, samples=args.samples, max_new=max_new,
                                            forced=forced, rows_per_call=chunk)
                    n = tokens(outs)
                    per[name].append(n / secs)
                    totals[name][0] += n
                    totals[name][1] += secs
                    print(f"  {max_new:4d} tokens {'forced ' if forced else 'natural'} round {r + 1} {name:5s}: "
                          f"{n:6d} tokens in {secs:6.1f} s = {n / secs:7.0f} tokens/s", flush=True)
            hf_med, vl_med = statistics.median(per["hf"]), statistics.median(per["vllm"])
            print(f"{max_new:4d} tokens {'forced ' if forced else 'natural'}: hf {hf_med:.0f}  vllm {vl_med:.0f}  "
                  f"ratio {vl_med / hf_med:.2f} (median tokens/s of {args.rounds} rounds)", flush=True)

    agree = total = 0
    for max_new in args.lengths:
        hf_out, _ = run_engine(hf, model, processor, prompts, samples=1, max_new=max_new, forced=False,
                               rows_per_call=args.hf_batch_rows, temperature=0.0)
        vl_out, _ = run_engine(vllm, model, processor, prompts, samples=1, max_new=max_new, forced=False,
                               rows_per_call=None, temperature=0.0)
        pairs = list(zip(rows(hf_out), rows(vl_out)))
        same = sum(a == b for a, b in pairs)
        print(f"greedy {max_new} tokens: {same}/{len(pairs)} prompts token-identical to the hf engine", flush=True)
        agree += same
        total += len(pairs)
    vllm.close()
    hf_tps, vl_tps = (totals[k][0] / totals[k][1] for k in ("hf", "vllm"))
    print(f"rollout tokens/s: hf {hf_tps:.0f} vllm {vl_tps:.0f} ratio {vl_tps / hf_tps:.2f}; greedy agreement {agree}/{total}")


if __name__ == "__main__":
    main()
