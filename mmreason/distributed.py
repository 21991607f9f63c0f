"""The process group and scalar collectives, shared by the recipes, evaluation and data tools.

Starting (or joining) the process group, this rank's device, and sums / maxima
of one number over ranks. Everything here is an identity (or a no-op) without
a process group, so single-process code runs the same path. Nothing here knows
about DeepSpeed engines, models or configs (that is `mmreason/engine.py`);
`init_distributed` only asks DeepSpeed to start the group.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.distributed as dist

from mmreason.ports import free_port


def init_distributed() -> tuple[int, int]:
    """Start (or join) the process group; returns (rank, world_size).

    Under the `deepspeed` launcher the environment names rank and world size;
    plain `python` gets a one-process group so the same code path runs.
    """
    if not dist.is_initialized():
        if "RANK" not in os.environ:
            os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                              MASTER_PORT=str(free_port()))
        import deepspeed

        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
        release_shm_buffer_name(dist.get_rank(), dist.get_world_size())
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    elif "OMP_NUM_THREADS" not in os.environ:
        # Ranks sharing a CPU must not oversubscribe it: spinning OpenMP threads on busy cores
        # make small kernels 10-30x slower (measured on 2 cores).
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_ranks))
    return dist.get_rank(), dist.get_world_size()


def shm_buffer_path(rank: int) -> Path:
    """Where DeepSpeed's CPU shared-memory all-reduce keeps this rank's buffer (named after MASTER_ADDR/PORT)."""
    name = f"deepspeed_allreduce_buffer_{os.getuid()}_{os.environ.get('MASTER_ADDR', '')}_{os.environ.get('MASTER_PORT', '')}_{rank}"
    return Path("/dev/shm") / name


def release_shm_buffer_name(rank: int, world_size: int) -> None:
    """Unlink this rank's DeepSpeed shared-memory buffer name once every rank has mapped it.

    When all ranks share one machine and no GPU, DeepSpeed maps a 69 MB buffer per rank in
    /dev/shm and never removes it: RAM-backed files that pile up launch after launch (20 GB
    after a day of runs here, starving later runs), and a later launch on the same port maps
    the stale one. Each rank opens its peers' buffers inside `deepspeed.init_distributed`, so
    after a barrier the names are no longer needed; the mappings stay valid until exit.
    """
    path = shm_buffer_path(rank)
    if world_size > 1:
        dist.barrier()
    path.unlink(missing_ok=True)


def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_reduce(value: float | torch.Tensor, op: dist.ReduceOp) -> float:
    tensor = torch.as_tensor(value, dtype=torch.float64, device=device()).clone()
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=op)
    return float(tensor)


def all_reduce_sum(value: float | torch.Tensor) -> float:
    """Sum a scalar over ranks (identity without a process group)."""
    return _all_reduce(value, dist.ReduceOp.SUM)


def all_reduce_max(value: float | torch.Tensor) -> float:
    """Maximum of a scalar over ranks (identity without a process group)."""
    return _all_reduce(value, dist.ReduceOp.MAX)


def all_gather_merged(mapping: dict) -> dict:
    """The union of every rank's `mapping` (identity without a process group; on a shared key a later rank's
    value wins, so use it for facts every rank agrees on, e.g. samples lost per truncated shard)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return dict(mapping)
    gathered_maps: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered_maps, mapping)
    merged: dict = {}
    for part in gathered_maps:
        merged.update(part)
    return merged


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shutdown_distributed() -> None:
    """Leave the process group together: a rank that tears gloo down while its peer is still in a collective
    can abort the peer at exit ("terminate called without an active exception")."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# ---- ZeRO-3 partitioned parameters ----------------------------------------------


def is_partitioned(param: torch.nn.Parameter) -> bool:
    """Whether DeepSpeed ZeRO-3 partitions `param` across the ranks (it marks the parameters it manages)."""
    return hasattr(param, "ds_id")


@contextlib.contextmanager
def gathered(params: list[torch.nn.Parameter], *, modify: bool = False) -> Iterator[None]:
    """Full values of `params` inside the block (ZeRO-3 partitions gathered; a no-op for ordinary parameters).

    A collective: every rank of the group must enter it with the same parameters. With `modify`, what the block
    writes into them (rank 0's values) is partitioned back on exit; otherwise writes are discarded.
    """
    if params and any(is_partitioned(p) for p in params):
        import deepspeed

        with deepspeed.zero.GatheredParameters(params, modifier_rank=0 if modify else None):
            yield
    else:
        yield


def module_own_weights(module: torch.nn.Module, prefix: str = "",
                       select: Callable[[str, torch.nn.Parameter], bool] | None = None,
                       device: str | torch.device | None = "cpu") -> Iterator[tuple[str, torch.Tensor]]:
    """(prefix + name, copy) of `module`'s own parameters (not its children's; tied ones under each name; those
    `select(name, param)` keeps) and persistent buffers, read in one gather (a collective under ZeRO-3).

    Copies, since a gathered parameter is released when the gather ends: on `device`, or with None on the
    tensor's own device (an engine in this process then loads them without a round trip through host memory).
    """
    own = [(prefix + n, p) for n, p in module.named_parameters(recurse=False, remove_duplicate=False)]
    if select is not None:
        own = [(n, p) for n, p in own if select(n, p)]
    with gathered([p for _, p in own]):
        for name, param in own:
            yield name, param.detach().to(device or param.device, copy=True).contiguous()
    for name, buf in module.named_buffers(recurse=False):
        if name not in module._non_persistent_buffers_set:
            yield prefix + name, buf.detach().to(device or buf.device, copy=True).contiguous()
