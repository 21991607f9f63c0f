"""Build long-CoT warmup SFT data: verified <think>...</think> replies, as shards + report.

    python data_prep/build_warmup.py --config configs/quickstart/warmup.yaml [input=DIR output=DIR key=value ...]
    deepspeed --num_gpus 8 data_prep/build_warmup.py --config configs/warmup.yaml output=data/warmup

    python data_prep/build_warmup.py --config configs/warmup.yaml [key=value ...] --print-config

Sources (`sources=[...]`): template (reference solutions rendered as <think>...</think> replies) and
rejection (k samples per problem from the teacher at rejection.model.path, verified ones kept; its prompt
defaults to how the teacher was trained, from its mmreason_generation.json). Outputs shards, report.json,
report.md. `--print-config` prints the resolved config with every key's docstring and default (also in
docs/config.md).
"""

import logging
import sys

from mmreason.cli_help import handle as handle_help_flags
from mmreason.config import ConfigError, load_config, parse_cli
from mmreason.export_meta import apply_checkpoint_defaults, explicit_keys
from mmreason.preflight import PreflightError, check_warmup, fail_once
from mmreason.warmup.config import WarmupConfig, WarmupError

CHECKPOINT_DEFAULTS = {"rejection.prompt_template": "template", "rejection.system_prompt": "system_prompt",
                       "rejection.model.min_pixels": "min_pixels", "rejection.model.max_pixels": "max_pixels"}
"""Keys taken from the teacher's mmreason_generation.json when neither the config nor the command line sets them."""


def main(argv: list[str]) -> int:
    argv = handle_help_flags(argv, doc=__doc__, schema=WarmupConfig, prog="build_warmup")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        path, overrides = parse_cli(argv)
        cfg = load_config(path, overrides, schema=WarmupConfig)
        if "rejection" in cfg.sources and cfg.rejection.model.path:  # prompt the teacher as it was trained
            apply_checkpoint_defaults(cfg, cfg.rejection.model.path, CHECKPOINT_DEFAULTS, explicit_keys(path, overrides),
                                      "build_warmup")
        check_warmup(cfg)  # paths and the teacher, before any shard is read or model loaded
        from mmreason.warmup.build import run_warmup  # imports torch: only once the config is known to be good

        report = run_warmup(cfg)
    except (ConfigError, WarmupError, PreflightError) as err:
        fail_once(err, prog="build_warmup")
    if report is not None:
        print(f"build_warmup: {report.input} problems in, {report.output} records out; "
              f"report in {cfg.output}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
