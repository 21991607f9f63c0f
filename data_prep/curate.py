"""Curate an RL prompt set (Kimi k1.5): dedup, decontaminate, tag, filter, score difficulty, balance.

    python data_prep/curate.py --config configs/curate.yaml [key=value ...]
    deepspeed --num_gpus 8 data_prep/curate.py --config configs/curate.yaml output=/data/curated

    python data_prep/curate.py --config configs/curate.yaml [key=value ...] --print-config

Steps, in order (each switched by `<step>.enabled`): dedup (perceptual image hash + question), decontam
(against eval_sets), tagging (domain/subject), evaluability (drop multiple choice, true/false, proofs,
unparseable answers), hackable (answers a model guesses without reasoning), blind (solved without the image),
difficulty (pass rate of model.path's samples), balance (domain and difficulty mix to balance.total).

Overrides use dotted keys: input=DIR output=DIR eval_sets=[a.parquet,b_dir] balance.total=5000 ...
`--print-config` prints the resolved config with every key's docstring and default (also in docs/config.md).
The model steps default to how model.path was trained (its mmreason_generation.json: template, pixel limits).
"""

import logging
import sys

from mmreason.cli_help import handle as handle_help_flags
from mmreason.config import ConfigError, load_config, parse_cli
from mmreason.curation.config import CurateConfig, CurationError
from mmreason.export_meta import apply_checkpoint_defaults, explicit_keys
from mmreason.preflight import PreflightError, check_curate, fail_once

CHECKPOINT_DEFAULTS = {"blind.template": "template", "difficulty.template": "template",
                       "model.min_pixels": "min_pixels", "model.max_pixels": "max_pixels"}
"""Keys taken from model.path's mmreason_generation.json when neither the config nor the command line sets them
(hackable keeps its answer-only template: it asks whether a bare answer can be guessed)."""


def fail(err: Exception) -> int:
    print(f"curate: error: {err}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    argv = handle_help_flags(argv, doc=__doc__, schema=CurateConfig, prog="curate")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        path, overrides = parse_cli(argv)
        cfg = load_config(path, overrides, schema=CurateConfig)
        if cfg.model.path:  # the model steps prompt as the checkpoint was trained, unless the config says otherwise
            apply_checkpoint_defaults(cfg, cfg.model.path, CHECKPOINT_DEFAULTS, explicit_keys(path, overrides), "curate")
        check_curate(cfg)  # paths, model and templates, before any shard is read or model loaded
    except (ConfigError, PreflightError) as err:
        fail_once(err, prog="curate")
    # torch & co. are imported only once the config is known to be good
    from mmreason.curation.pipeline import run_curation
    from mmreason.models import CheckpointError

    try:
        report = run_curation(cfg)
    except (CurationError, CheckpointError) as err:
        return fail(err)
    print(f"curate: {report.input} problems in, {report.output} out; report in {cfg.output}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
