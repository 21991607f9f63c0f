"""Model merging (Kimi k1.5 long2short): weighted average of HF checkpoints of one architecture.

    python scripts/merge_models.py --models LONG SHORT [--weights 0.5 0.5] --out DIR

The processor comes from the first model; DIR is an ordinary HF checkpoint. Models whose parameters differ in
name or shape fail naming the first such parameter.
"""

import argparse
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="merge_models", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="two or more HF checkpoint directories")
    parser.add_argument("--weights", nargs="+", type=float, default=None, help="one per model, summing to 1 "
                        "(default: equal)")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    from mmreason.long2short.merge import MergeError, merge_checkpoints

    try:
        out = merge_checkpoints(args.models, args.out, args.weights)
    except MergeError as err:
        print(f"merge_models: error: {err}", file=sys.stderr)
        return 2
    print(f"merge_models: {len(args.models)} models averaged into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
