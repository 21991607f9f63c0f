"""Launch helpers for the engine tests' two-rank runs."""

import sys
from pathlib import Path

from mmreason.ports import free_port


def deepspeed_launcher(num_ranks: int = 2) -> tuple[str, ...]:
    """The virtualenv's own launcher on a free port (concurrent launches must not collide on 29500)."""
    return (str(Path(sys.executable).with_name("deepspeed")), "--num_gpus", str(num_ranks),
            "--master_port", str(free_port()))
