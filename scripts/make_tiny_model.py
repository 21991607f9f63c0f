"""Build the embedded default checkpoint: a tiny Qwen2.5-VL-architecture model with a locally trained tokenizer.

    python scripts/make_tiny_model.py --out DIR [--corpus shards_dir_or_text] [--hidden-size 128 ...]
"""

import argparse
import dataclasses
import time

from mmreason.cli_help import field_docs
from mmreason.tiny import TinyModelSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="checkpoint directory to write")
    parser.add_argument("--corpus", default=None, help="tokenizer corpus: .txt, .jsonl, a shard .tar or a shard directory")
    docs = field_docs(TinyModelSpec)
    for f in dataclasses.fields(TinyModelSpec):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=f.default,
                            help=f"{docs.get(f.name, '')} (default: %(default)s)")
    args = parser.parse_args()
    from mmreason.models import count_parameters  # imports torch: only once the arguments parsed
    from mmreason.tiny import build_tiny_checkpoint

    spec = TinyModelSpec(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TinyModelSpec)})
    start = time.perf_counter()
    out = build_tiny_checkpoint(args.out, spec, corpus=args.corpus)
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(out)
    print(f"wrote {out}: {count_parameters(model) / 1e6:.2f} M parameters in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
