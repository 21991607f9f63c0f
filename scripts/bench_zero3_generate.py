"""RL step time under ZeRO-3 with the hf engine: generating on partitioned weights (`synced_gpus`, one all-gather
per layer per decoded token) against gathering the weights once per generation call (`engine.full_weights`).

    python scripts/bench_zero3_generate.py [--ranks 2] [--rounds 3] [--prompts 4] [--group-size 4]
                                           [--max-new-tokens 64] [--checkpoint DIR]

Each of `--ranks` gloo ranks (one CPU thread each) builds a ZeRO-3 DeepSpeed engine over the same tiny checkpoint
(built in a temporary directory unless --checkpoint is given) and runs `--rounds` RL steps with each way of
generating, alternately: `generate_rollouts` (group_size samples of each of the rank's image prompts, temperature 1,
the same seed in both modes) followed by one `update_policy` pass. Both ranks hold image prompts: the partitioned
path cannot run a rank with images beside a text-only one (it hangs: the ranks gather different modules).

Prints, per mode, the median seconds of generation and of the whole step on rank 0, and last:
`zero3 hf step: synced_gpus Xs (generate Ys) gathered-once Zs (generate Ws) speedup S`.

Measured (issue 27; 2 CPU cores shared with other work, defaults: 2 ranks, 4 prompts x 4 samples, 64 tokens):
synced_gpus 1.83 s per step (generate 1.01 s), gathered once 1.06 s (generate 0.37 s): 1.73x per step, 2.7x in
generation. The tiny model's layers are small, so this is mostly per-collective latency; on a GPU cluster each
of synced_gpus' per-token gathers also moves the whole layer over the network.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = ("synced_gpus", "gathered_once")


def worker(args: argparse.Namespace) -> None:
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # torch's notes on DeepSpeed's collective names
    import torch
    import torch.distributed as dist
    from PIL import Image, ImageDraw

    from mmreason.config import Config, ModelConfig
    from mmreason.distributed import shutdown_distributed
    from mmreason.engine import build_engine, full_weights
    from mmreason.models import load_policy
    from mmreason.problem import Problem
    from mmreason.rl.loop import update_policy
    from mmreason.rl.rollout import generate_rollouts

    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model, processor = load_policy(ModelConfig(path=args.checkpoint))
    cfg = Config()
    cfg.train.zero_stage, cfg.train.micro_batch_size = 3, args.group_size
    cfg.rollout.group_size, cfg.rollout.max_new_tokens, cfg.rollout.repetition_count = args.group_size, args.max_new_tokens, 0
    cfg.rollout.generation_batch_size = args.prompts * args.group_size
    grad_accum = args.prompts
    engine = build_engine(model, cfg.optim, cfg.train, micro_batch_size=args.group_size, grad_accum=grad_accum,
                          world_size=world_size)

    def dots(index: int) -> Problem:
        image = Image.new("RGB", (112, 112), "white")
        draw = ImageDraw.Draw(image)
        for k in range(index % 4 + 1):
            draw.ellipse([10 + 24 * k, 40, 28 + 24 * k, 58], fill="black")
        return Problem(pid=f"r{rank}-{index}", question="<image>How many dots are there?", answer=str(index % 4 + 1),
                       answer_type="integer", images=[image])

    problems = [dots(rank * args.prompts + i) for i in range(args.prompts)]
    advantages = torch.tensor([1.0, -1.0]).repeat(args.prompts * args.group_size // 2)
    times: dict[str, dict[str, list[float]]] = {mode: {"generate": [], "step": []} for mode in MODES}
    for round_index in range(args.rounds):
        for mode in MODES:
            torch.manual_seed(1000 + round_index)  # the same samples in both modes
            dist.barrier()
            start = time.perf_counter()
            if mode == "synced_gpus":
                rollout = generate_rollouts(engine.module, processor, problems, cfg.rollout, template="r1_boxed",
                                            synced_gpus=True)
            else:
                with full_weights(engine) as policy:
                    rollout = generate_rollouts(policy, processor, problems, cfg.rollout, template="r1_boxed")
            generated = time.perf_counter()
            update_policy(engine, rollout, None, None, advantages, cfg, world_size=world_size, grad_accum=grad_accum)
            dist.barrier()
            end = time.perf_counter()
            times[mode]["generate"].append(generated - start)
            times[mode]["step"].append(end - start)
            if rank == 0:
                print(f"round {round_index} {mode:13s} generate {generated - start:6.2f}s step {end - start:6.2f}s "
                      f"({int(rollout.response_mask.sum())} response tokens on rank 0)", file=sys.stderr, flush=True)
    if rank == 0:
        print(json.dumps(times), flush=True)
    engine.destroy()
    shutdown_distributed()


def launch(args: argparse.Namespace, checkpoint: str) -> dict:
    from mmreason.ports import free_port

    port = str(free_port())
    procs = []
    child_args = [f"--checkpoint={checkpoint}", f"--rounds={args.rounds}", f"--prompts={args.prompts}",
                  f"--group-size={args.group_size}", f"--max-new-tokens={args.max_new_tokens}", "--child"]
    for rank in range(args.ranks):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(args.ranks),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, __file__, *child_args], env=env, cwd=REPO,
                                      stdout=subprocess.PIPE, stderr=None if rank == 0 else subprocess.DEVNULL,
                                      text=True))
    outputs = [proc.communicate()[0] for proc in procs]
    if any(proc.returncode != 0 for proc in procs):
        raise SystemExit(f"bench_zero3_generate: a rank failed (exit codes {[p.returncode for p in procs]})")
    return json.loads(outputs[0].strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=4, help="image prompts per rank")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--checkpoint", help="a tiny checkpoint (built in a temporary directory when not given)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        worker(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or str(Path(tmp) / "tiny")
        if not args.checkpoint:
            subprocess.run([sys.executable, str(REPO / "scripts" / "make_tiny_model.py"), "--out", checkpoint],
                           check=True, capture_output=True)
        print(f"ZeRO-3 on {args.ranks} CPU ranks: {args.prompts} image prompts x {args.group_size} samples per rank, "
              f"up to {args.max_new_tokens} new tokens, {args.rounds} rounds per mode (alternating)", flush=True)
        times = launch(args, checkpoint)
    medians = {mode: {part: statistics.median(values) for part, values in parts.items()} for mode, parts in times.items()}
    for mode in MODES:
        print(f"{mode:13s} median generate {medians[mode]['generate']:7.2f}s  step {medians[mode]['step']:7.2f}s")
    before, after = medians["synced_gpus"], medians["gathered_once"]
    print(f"zero3 hf step: synced_gpus {before['step']:.2f}s (generate {before['generate']:.2f}s) gathered-once "
          f"{after['step']:.2f}s (generate {after['generate']:.2f}s) speedup {before['step'] / after['step']:.2f}x")


if __name__ == "__main__":
    main()
