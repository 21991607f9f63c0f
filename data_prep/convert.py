"""Convert MathVista / Geometry3K / plain jsonl problems into webdataset shards.

    python data_prep/convert.py --format mathvista --input MathVista/data/testmini-00000-of-00001.parquet --out data/mathvista
    python data_prep/convert.py --format geometry3k --input geo3k/train.jsonl --out data/geo3k --shard-size 500
    python data_prep/convert.py --format jsonl --input my_problems.jsonl --out data/mine

--input may also be a directory of .parquet/.jsonl/.json files. The formats are
described in mmreason/data/convert.py, where all the logic lives.
"""

from __future__ import annotations

import argparse
import sys

from mmreason.data.convert import FORMATS, ConvertError, convert


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True, choices=FORMATS, help="input schema")
    parser.add_argument("--input", required=True, help="input file or directory")
    parser.add_argument("--out", required=True, help="output directory for the shards")
    parser.add_argument("--shard-size", type=int, default=1000, help="problems per shard")
    parser.add_argument("--prefix", default="shard", help="shard file name prefix")
    parser.add_argument("--allow-outside-paths", action="store_true",
                        help="let image paths in the input lead outside the input directory (absolute, ../, symlinks)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mmreason.data.shards import write_shards  # imports torch: only once the arguments parsed

    counted = 0

    def counting(problems):
        nonlocal counted
        for problem in problems:
            counted += 1
            yield problem

    try:
        problems = convert(args.format, args.input, allow_outside_paths=args.allow_outside_paths)
        # write_shards replaces the previous {prefix}-*.tar in --out only once every problem converted
        shards = write_shards(counting(problems), args.out, args.shard_size, args.prefix)
    except (ConvertError, ValueError) as err:
        print(f"convert: error: {err}", file=sys.stderr)
        return 2
    print(f"convert: {counted} problems from {args.input} ({args.format}) -> {len(shards)} shard(s) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
