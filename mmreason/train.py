"""Entry point of every training stage.

    deepspeed [--num_gpus N] mmreason/train.py --config configs/rl_vision.yaml [key=value ...]
    python mmreason/train.py --config configs/quickstart/sft_warmup.yaml      (one process)

Config -> the run directory's identity check (mmreason/rundir.py) -> distributed init -> the recipe named
by `stage` (sft or rl). Each rank dies with its launcher and stops cleanly on SIGTERM (mmreason/lifecycle.py).
"""

from __future__ import annotations

import logging
import sys

from pathlib import Path

from mmreason.config import ConfigError, load_config, parse_cli, validate_for_world
from mmreason.lifecycle import tie_rank_to_launcher
from mmreason.problem import set_max_image_pixels
from mmreason.rundir import RunDirError, check_run_dir, record_run, remove_partial_checkpoints


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tie_rank_to_launcher()
    path, overrides = parse_cli(sys.argv[1:] if argv is None else argv)
    if path is None:
        raise SystemExit("usage: mmreason/train.py --config CONFIG.yaml [key=value ...]")
    try:
        cfg = load_config(path, overrides)
    except ConfigError as err:  # a malformed config fails before any work starts
        raise SystemExit(f"error: {err}") from None
    try:  # every rank reads the same directory before any of them writes to it (rank 0 does after init)
        check_run_dir(cfg)
    except RunDirError as err:
        raise SystemExit(f"error: {err}") from None
    set_max_image_pixels(cfg.data.max_image_pixels)

    from mmreason.distributed import barrier, init_distributed

    rank, world_size = init_distributed()
    try:
        validate_for_world(cfg, world_size)
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    if rank == 0:
        remove_partial_checkpoints(Path(cfg.train.output_dir))
        record_run(cfg)
    barrier()
    if rank != 0:
        logging.getLogger().setLevel(logging.WARNING)
    if cfg.stage == "sft":
        from mmreason.sft.loop import run
    else:
        from mmreason.rl.loop import run
    run(cfg, rank, world_size)


if __name__ == "__main__":
    main()
