"""Write problem shards as a MathVista-schema parquet file (query rendered with a prompt template).

    python data_prep/export_mathvista.py --input runs/quickstart/data/heldout --out heldout.parquet [--template r1_boxed]
"""

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="problem shards: directory, brace pattern or tar paths")
    parser.add_argument("--out", required=True, help="parquet file to write")
    parser.add_argument("--template", default="r1_boxed", help="prompt template rendered into the `query` column")
    args = parser.parse_args()
    from mmreason.data.shards import stream_problems  # imports torch: only once the arguments parsed
    from mmreason.eval.mathvista_export import export_mathvista

    path = export_mathvista(stream_problems(args.input), args.out, args.template)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
