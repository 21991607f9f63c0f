"""Entry point of every training stage.

    mmreason-train [--num_gpus N] --config configs/rl_vision.yaml [key=value ...]   (deepspeed on a free port)
    deepspeed [--num_gpus N] mmreason/train.py --config configs/rl_vision.yaml [key=value ...]
    python mmreason/train.py --config configs/quickstart/sft_warmup.yaml      (one process)
    python mmreason/train.py --config FILE.yaml [key=value ...] --print-config  (resolved config, documented)

Stages (`stage=` in the config): sft (long-CoT warmup SFT, mmreason/sft/loop.py), rl (RL with verifiable
rewards: grpo, dapo, dr_grpo, k15; mmreason/rl/loop.py) and dpo (preference pairs, Kimi k1.5's long2short;
mmreason/dpo/loop.py). Every key: `--print-config` (each key's docstring and
default) or docs/config.md; examples in configs/ and configs/quickstart/.

Config -> the run directory's identity check (mmreason/rundir.py) -> pre-flight checks of paths, packages and
sizes (mmreason/preflight.py; one error line naming the key, printed by rank 0) -> distributed init -> the recipe
named by `stage`. Each rank dies with its launcher and stops cleanly on SIGTERM (mmreason/lifecycle.py).
"""

from __future__ import annotations

import logging
import sys

from pathlib import Path

from mmreason.cli_help import handle as handle_help_flags
from mmreason.config import Config, ConfigError, load_config, parse_cli, validate_for_world
from mmreason.lifecycle import tie_rank_to_launcher
from mmreason.preflight import PreflightError, check_train, fail_once, launcher_world_size
from mmreason.problem import set_max_image_pixels
from mmreason.rundir import RunDirError, check_run_dir, record_run, remove_partial_checkpoints


def main(argv: list[str] | None = None) -> None:
    argv = handle_help_flags(sys.argv[1:] if argv is None else argv, doc=__doc__, schema=Config, prog="train")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tie_rank_to_launcher()
    try:  # a malformed config, a missing path or package, too few prompts: one line from rank 0, before any work
        path, overrides = parse_cli(argv)
        if path is None:
            raise ConfigError("usage: mmreason/train.py --config CONFIG.yaml [key=value ...] (--help for more)")
        cfg = load_config(path, overrides)
        # every rank reads the same directory before any of them writes to it (rank 0 does after init);
        # first, as it is the cheapest check and a run directory of another run makes every other fix moot
        check_run_dir(cfg)
        check_train(cfg, launcher_world_size())
    except (ConfigError, PreflightError, RunDirError) as err:
        fail_once(err)
    set_max_image_pixels(cfg.data.max_image_pixels)

    from mmreason.distributed import barrier, init_distributed, shutdown_distributed

    rank, world_size = init_distributed()
    try:
        validate_for_world(cfg, world_size)
    except ConfigError as err:
        fail_once(err)
    if rank == 0:
        remove_partial_checkpoints(Path(cfg.train.output_dir))
        record_run(cfg)
    barrier()
    if rank != 0:
        logging.getLogger().setLevel(logging.WARNING)
    if cfg.stage == "sft":
        from mmreason.sft.loop import run
    elif cfg.stage == "dpo":
        from mmreason.dpo.loop import run
    else:
        from mmreason.rl.loop import run
    run(cfg, rank, world_size)
    shutdown_distributed()


if __name__ == "__main__":
    main()
