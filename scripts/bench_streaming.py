"""Benchmark data at scale (issue 27): bytes each rank reads under the sample and the shard split, and the memory of
the RL prompt set held as an index (images decoded when drawn) against decoding every image up front.

    python scripts/bench_streaming.py [--shards 8 --per-shard 100 --ranks 2 --workers 2] [--prompts 2000 --image-size 336]

Bytes: the synthetic corpus is written to `--shards` shards; for each split every rank runs a `ProblemStream` (one
pass) through a DataLoader with `--workers` worker processes, so each consumer (rank x worker) runs the real reading
path. The opener `read_raw_samples` uses (webdataset's `gopen`, looked up in mmreason.data.shards) is wrapped by one
that counts the bytes read through each opened shard and appends them to a log from whichever process reads, so the
numbers include the DataLoader workers. Each split's samples are checked to be exactly the corpus, once.

Memory: `--prompts` synthetic problems in shards; two fresh interpreters each load them the way the RL loop does
(after importing everything, so the baseline excludes imports) and report their peak RSS growth (ru_maxrss) and the
RSS still held afterwards: `decode-all` is the former `load_prompt_set` (`list(stream_problems(...))`, every image
decoded), `index` is today's (`mmreason.rl.loop.load_prompt_set`: records + PNG bytes, images checked but not
decoded). Synthetic images are flat drawings that PNG compresses about 65x; photos compress far less, so the gap
on real data is smaller (it is the ratio of decoded pixels to encoded bytes).

Measured 2026-12-04 on the 2-core CPU machine (shared with other work, so the seconds are loose), defaults:

    corpus: 800 problems in 8 shards, 9,912,320 bytes; 2 ranks x 2 workers = 4 consumers
    split=sample  rank 0: 19,824,640 bytes (2.00 x the shards)  rank 1: 19,824,640 bytes (2.00 x the shards)  total 4.00 x
                  samples 800/800 once  (4 reading processes)
    split=shard   rank 0: 4,956,160 bytes (0.50 x the shards)  rank 1: 4,956,160 bytes (0.50 x the shards)  total 1.00 x
                  samples 800/800 once  (4 reading processes)
    prompt set: 2,000 problems, 336 px images, 10.1 MB of PNG in shards (677 MB as decoded pixels)
    decode-all (before)  peak RSS  +885.4 MiB, held  +885.4 MiB, 58.08 s
    index (now)          peak RSS   +17.2 MiB, held   +17.2 MiB, 2.25 s; first draw of 64 prompts decodes them in 1.19 s

So under the sample split every consumer reads every shard (4 x the data per pass over 4 consumers), under the
shard split each reads its quarter (1 x in total). The prompt index holds 17 MiB where decoding held 885 MiB;
drawing adds at most data.image_cache_size decoded problems (default 128, 0.34 MB each at 336 px).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class CountingStream:
    """A shard's file object that counts the bytes read through it and logs them (pid, rank, bytes, url) on close."""

    def __init__(self, stream, url: str, rank: int, log: Path):
        self.stream, self.url, self.rank, self.log, self.bytes_read = stream, url, rank, log, 0

    def read(self, *args):
        data = self.stream.read(*args)
        self.bytes_read += len(data)
        return data

    def close(self):
        with open(self.log, "a") as file:
            file.write(json.dumps({"pid": os.getpid(), "rank": self.rank, "bytes": self.bytes_read, "url": self.url}) + "\n")
        self.stream.close()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def bytes_per_rank(shard_dir: Path, split: str, ranks: int, workers: int, log: Path) -> tuple[list[int], Counter, int]:
    """(bytes read by each rank, pids seen, worker processes that read) for one pass under `split`."""
    from torch.utils.data import DataLoader

    import mmreason.data.shards as shards
    from mmreason.data.shards import ProblemStream, collate_problems

    real_gopen = shards.gopen
    log.unlink(missing_ok=True)
    seen: Counter = Counter()
    try:
        for rank in range(ranks):
            # the workers fork from here and inherit the wrapped opener, which knows the rank
            shards.gopen = lambda url, mode="rb", _rank=rank, **kw: CountingStream(real_gopen(url, mode, **kw), url, _rank, log)
            stream = ProblemStream(shard_dir, rank=rank, world_size=ranks, shuffle_buffer=100, seed=0, split=split)
            loader = DataLoader(stream, batch_size=8, num_workers=workers, collate_fn=collate_problems)
            seen.update(p.pid for batch in loader for p in batch)
    finally:
        shards.gopen = real_gopen
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    per_rank = [sum(r["bytes"] for r in rows if r["rank"] == rank) for rank in range(ranks)]
    return per_rank, seen, len({r["pid"] for r in rows})


def rss_child(mode: str, shard_dir: str) -> None:
    """Run in a fresh interpreter: load the prompt set one way, print peak and held RSS growth as JSON."""
    from mmreason.data.shards import stream_problems
    from mmreason.rewards import check_ground_truth
    from mmreason.rl.loop import load_prompt_set

    def held_kib() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    base_peak, base_held = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, held_kib()
    started = time.perf_counter()
    if mode == "decode-all":  # what load_prompt_set did before the index
        prompts = list(stream_problems(shard_dir, rank=0, world_size=1))
        for problem in prompts:
            check_ground_truth(problem)
    else:
        prompts = load_prompt_set(shard_dir)
    seconds = time.perf_counter() - started
    result = {"mode": mode, "prompts": len(prompts), "seconds": seconds,
              "peak_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_peak) / 1024,
              "held_mib": (held_kib() - base_held) / 1024}
    if mode == "index":
        started = time.perf_counter()
        drawn = [prompts[i] for i in range(0, len(prompts), max(1, len(prompts) // 64))][:64]
        result["draw_seconds"], result["drawn"] = time.perf_counter() - started, len(drawn)
        result["encoded_mb"] = prompts.encoded_bytes() / 1e6
        result["decoded_mb"] = sum(len(im.tobytes()) for p in (prompts[i] for i in range(len(prompts)))
                                   for im in p.images) / 1e6 if len(prompts) <= 5000 else float("nan")
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--per-shard", type=int, default=100)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=336, help="synthetic image side of the prompt set")
    parser.add_argument("--rss-child", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return

    from mmreason.data.shards import write_shards
    from mmreason.data.synth import iter_problems

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        num = args.shards * args.per_shard
        paths = write_shards(iter_problems(num, 0, image_size=112), corpus, shard_size=args.per_shard)
        total = sum(p.stat().st_size for p in paths)
        consumers = args.ranks * args.workers
        print(f"corpus: {num} problems in {len(paths)} shards, {total:,} bytes; {args.ranks} ranks x {args.workers} "
              f"workers = {consumers} consumers")
        for split in ("sample", "shard"):
            per_rank, seen, readers = bytes_per_rank(corpus, split, args.ranks, args.workers, Path(tmp) / "read.log")
            once = len(seen) == num and set(seen.values()) == {1}
            ranks = "  ".join(f"rank {r}: {b:,} bytes ({b / total:.2f} x the shards)" for r, b in enumerate(per_rank))
            print(f"split={split:<6}  {ranks}  total {sum(per_rank) / total:.2f} x  samples {len(seen)}/{num} "
                  f"{'once' if once else 'NOT ONCE'}  ({readers} reading processes)")

        prompt_dir = Path(tmp) / "prompts"
        write_shards(iter_problems(args.prompts, 1, image_size=args.image_size), prompt_dir, shard_size=500)
        results = {}
        for mode in ("decode-all", "index"):
            out = subprocess.run([sys.executable, __file__, "--rss-child", mode, str(prompt_dir)], capture_output=True,
                                 text=True, check=True, cwd=ROOT)
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        index = results["index"]
        print(f"prompt set: {index['prompts']:,} problems, {args.image_size} px images, {index['encoded_mb']:.1f} MB "
              f"of PNG in shards ({index['decoded_mb']:.0f} MB as decoded pixels)")
        for mode, label in (("decode-all", "decode-all (before)"), ("index", "index (now)")):
            r = results[mode]
            extra = (f"; first draw of {r['drawn']} prompts decodes them in {r['draw_seconds']:.2f} s"
                     if mode == "index" else "")
            print(f"{label:<20} peak RSS {r['peak_mib']:+7.1f} MiB, held {r['held_mib']:+7.1f} MiB, "
                  f"{r['seconds']:.2f} s{extra}")


if __name__ == "__main__":
    main()
