"""Token efficiency of checkpoints (Kimi k1.5 long2short): accuracy against mean response length, as a table and a PNG.

    python scripts/plot_token_efficiency.py EVAL_DIR... --out DIR [--baseline NAME]
    python scripts/plot_token_efficiency.py CHECKPOINT... --data heldout.parquet --out DIR [--max-new-tokens N]

Each argument is a MathVista evaluator output directory (scores.json + generation.json, from
`python -m mmreason.eval.cli run` / scripts/eval_mathvista.py) or an HF checkpoint (config.json), which is then
evaluated on --data (greedy) into DIR/eval/<name>/. NAME=PATH names a point (default: the directory name).
Writes DIR/token_efficiency.{md,json,png}.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="plot_token_efficiency", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="evaluation directories or checkpoints, optionally NAME=PATH")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--data", default=None, help="held-out set for checkpoints (.parquet / .jsonl / shards)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="evaluation length (checkpoints only)")
    parser.add_argument("--baseline", default=None, help="point name the others are compared with (e.g. long)")
    args = parser.parse_args(argv)
    from mmreason.long2short.efficiency import plot, read_point, table, to_json

    out = Path(args.out)
    points = []
    for item in args.dirs:
        name, _, path = item.rpartition("=") if "=" in item else ("", "", item)
        path = Path(path)
        name = name or path.name
        if (path / "config.json").is_file() and not (path / "scores.json").is_file():
            if args.data is None:
                parser.error(f"{path} is a checkpoint: --data names the held-out set to evaluate it on")
            eval_dir = out / "eval" / name
            cmd = [sys.executable, "-m", "mmreason.eval.cli", "run", "--model", str(path), "--data", args.data,
                   "--out", str(eval_dir)]
            if args.max_new_tokens:
                cmd += ["--max-new-tokens", str(args.max_new_tokens)]
            subprocess.run(cmd, check=True)
            path = eval_dir
        points.append(read_point(path, name))
    out.mkdir(parents=True, exist_ok=True)
    text = table(points, args.baseline)
    (out / "token_efficiency.md").write_text(text)
    (out / "token_efficiency.json").write_text(json.dumps(to_json(points), indent=2) + "\n")
    plot(points, out / "token_efficiency.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
