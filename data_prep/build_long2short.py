"""Kimi k1.5 long2short data: shortest rejection sampling (SFT shards) and DPO preference pairs, with a report.

    python data_prep/build_long2short.py --config configs/quickstart/long2short.yaml [key=value ...]
    deepspeed --num_gpus N data_prep/build_long2short.py --config configs/quickstart/long2short.yaml \\
        input=DIR output=DIR sampling.model.path=LONG_COT_CHECKPOINT

Samples sampling.num_samples replies per problem from the long-CoT model (sampling.engine=hf|vllm), verifies them with the
reward's verifier and writes output/sft/ (the shortest correct reply per problem), output/dpo/ (the shortest
correct reply against wrong ones and correct ones over length_ratio x longer; `stage: dpo` trains on them),
report.json and report.md. `--print-config` prints every key with its docstring.
"""

import logging
import sys

from mmreason.cli_help import handle as handle_help_flags
from mmreason.config import ConfigError, load_config, parse_cli
from mmreason.preflight import fail_once
from mmreason.long2short.config import Long2ShortConfig
from mmreason.warmup.config import WarmupError


def main(argv: list[str]) -> int:
    argv = handle_help_flags(argv, doc=__doc__, schema=Long2ShortConfig, prog="build_long2short")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        path, overrides = parse_cli(argv)
        cfg = load_config(path, overrides, schema=Long2ShortConfig)
        from mmreason.long2short.build import run_long2short  # imports torch: only once the config is known to be good

        report = run_long2short(cfg)
    except (ConfigError, WarmupError) as err:
        fail_once(err, prog="build_long2short")
    if report is not None:
        print(f"build_long2short: {report['problems']} problems, {report['sft_records']} shortest replies, "
              f"{report['dpo_pairs']} DPO pairs; report in {cfg.output}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
