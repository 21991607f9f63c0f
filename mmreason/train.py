"""Entry point of every training stage.

    deepspeed [--num_gpus N] mmreason/train.py --config configs/rl_vision.yaml [key=value ...]
    python mmreason/train.py --config configs/quickstart/sft_warmup.yaml      (one process)

Config -> distributed init -> the recipe named by `stage` (sft or rl).
"""

from __future__ import annotations

import logging
import sys

from mmreason.config import ConfigError, load_config, parse_cli, validate_for_world


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path, overrides = parse_cli(sys.argv[1:] if argv is None else argv)
    if path is None:
        raise SystemExit("usage: mmreason/train.py --config CONFIG.yaml [key=value ...]")
    try:
        cfg = load_config(path, overrides)
    except ConfigError as err:  # a malformed config fails before any work starts
        raise SystemExit(f"error: {err}") from None

    from mmreason.distributed import init_distributed

    rank, world_size = init_distributed()
    try:
        validate_for_world(cfg, world_size)
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    if rank != 0:
        logging.getLogger().setLevel(logging.WARNING)
    if cfg.stage == "sft":
        from mmreason.sft.loop import run
    else:
        from mmreason.rl.loop import run
    run(cfg, rank, world_size)


if __name__ == "__main__":
    main()
