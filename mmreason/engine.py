"""DeepSpeed machinery shared by the SFT and RL recipes.

The engine (AdamW, warmup + cosine schedule, clipping, ZeRO,
bf16 where the hardware has it), checkpoints that resume exactly (DeepSpeed
state + per-rank RNG + the recipe's own state) and the HF export.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import pickle
import random
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist

from mmreason.config import OptimConfig, TrainConfig
from mmreason.distributed import barrier, device
from mmreason.lora import base_model, is_lora, merged_state_dict
from mmreason.models import vision_tower

log = logging.getLogger(__name__)


# ---- engine -----------------------------------------------------------------


def lr_lambda(step: int, cfg: OptimConfig, max_steps: int) -> float:
    """Multiplier of the peak lr: linear warmup, then cosine decay to min_lr_ratio (or constant)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    decay_steps = max(1, max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / decay_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def deepspeed_config(optim: OptimConfig, train: TrainConfig, *, micro_batch_size: int, grad_accum: int,
                     world_size: int, bf16: bool) -> dict[str, Any]:
    """The DeepSpeed JSON: a user file from train.deepspeed_config with its "auto" values filled, or a default."""
    if train.deepspeed_config:
        ds = json.loads(Path(train.deepspeed_config).read_text())
    else:
        ds = {"zero_optimization": {"stage": train.zero_stage}}
    filled = {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": grad_accum,
        "train_batch_size": micro_batch_size * grad_accum * world_size,
        "gradient_clipping": optim.max_grad_norm,
        "steps_per_print": 10**9,
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": optim.lr,
                "betas": [optim.beta1, optim.beta2],
                "eps": optim.eps,
                "weight_decay": optim.weight_decay,
                # DeepSpeed's fused Adam needs CUDA; torch's AdamW runs everywhere.
                "torch_adam": not torch.cuda.is_available(),
            },
        },
    }
    for key, value in filled.items():
        if ds.get(key, "auto") == "auto":
            ds[key] = value
    if ds.get("bf16", {}).get("enabled", "auto") == "auto":
        ds["bf16"] = {"enabled": bf16}
    ds.setdefault("zero_optimization", {"stage": train.zero_stage})
    for key, value in list(ds["zero_optimization"].items()):
        if value == "auto":
            del ds["zero_optimization"][key]  # let DeepSpeed choose its own default
    return ds


def partitioned_frozen_model(model: torch.nn.Module, *, offload_to_cpu: bool) -> torch.nn.Module:
    """`model` (frozen, e.g. the reference policy) with its parameters partitioned across ranks by ZeRO-3, optionally
    kept in CPU memory and streamed to the device module by module; no optimizer. Every rank must run its forwards
    together (each gathers). Returns the module to call."""
    import deepspeed

    bf16 = next(model.parameters()).dtype == torch.bfloat16
    zero: dict[str, Any] = {"stage": 3}
    if offload_to_cpu:
        zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    config = {"train_micro_batch_size_per_gpu": 1, "zero_optimization": zero, "bf16": {"enabled": bf16},
              "steps_per_print": 10**9}
    engine, _, _, _ = deepspeed.initialize(model=model, config=config)
    engine.eval()
    return engine.module


def parameter_groups(model: torch.nn.Module, lr: float, vision_lr_scale: float) -> list:
    """The trainable parameters for the optimizer: one flat list, or with vision_lr_scale != 1 two groups, the
    vision tower's at lr * vision_lr_scale (the lr schedule scales both alike)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if vision_lr_scale == 1.0:
        return trainable
    in_tower = {id(p) for p in vision_tower(model).parameters()}
    groups = [{"params": [p for p in trainable if id(p) not in in_tower]},
              {"params": [p for p in trainable if id(p) in in_tower], "lr": lr * vision_lr_scale}]
    return [group for group in groups if group["params"]]


def build_engine(model: torch.nn.Module, optim: OptimConfig, train: TrainConfig, *, micro_batch_size: int,
                 grad_accum: int, world_size: int):
    """A DeepSpeed engine over the trainable parameters, with the lr schedule attached."""
    import deepspeed

    bf16 = next(model.parameters()).dtype == torch.bfloat16
    ds_config = deepspeed_config(optim, train, micro_batch_size=micro_batch_size, grad_accum=grad_accum,
                                 world_size=world_size, bf16=bf16)

    def scheduler(optimizer):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_lambda(s, optim, train.max_steps))

    engine, _, _, _ = deepspeed.initialize(
        model=model,
        model_parameters=parameter_groups(model, optim.lr, optim.vision_lr_scale),
        config=ds_config,
        lr_scheduler=scheduler,
    )
    return engine


def step_with_grad_norm(engine) -> float | None:
    """engine.step(); at an accumulation boundary also return the global gradient norm before clipping."""
    boundary = engine.is_gradient_accumulation_boundary()
    norm = None
    if boundary and zero_stage(engine) == 0:
        # Stage 0 keeps full, already all-reduced gradients on every rank but does not report their norm.
        grads = [p.grad.detach().float() for p in engine.module.parameters() if p.grad is not None]
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))) if grads else 0.0
    engine.step()
    if boundary and norm is None:
        reported = engine.get_global_grad_norm()
        norm = float(reported) if reported is not None else float("nan")
    return norm


def zero_stage(engine) -> int:
    return int(engine.zero_optimization_stage())


@contextlib.contextmanager
def full_weights(engine) -> Iterator[torch.nn.Module]:
    """The policy module with every parameter whole, for generation; under ZeRO-3, gathered once for the block.

    Why: generating from partitioned weights (`synced_gpus`) gathers each layer again at every decoded token, and
    ranks whose prompts differ in modality gather different modules (one runs the vision tower, the other not)
    and wait for each other forever. Gathered once, decoding needs no collective at all. ZeRO-3's forward hooks
    would release the gathered weights after each module, so they are lifted for the block and put back after.
    The price is the whole model on every rank while generating (the vllm engine avoids it).
    """
    module = engine.module
    if zero_stage(engine) != 3:
        yield module
        return
    import deepspeed

    offload = getattr(engine.optimizer, "parameter_offload", engine.optimizer)
    with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
        for param in module.parameters():
            param.ds_active_sub_modules.clear()
        for hook in [*offload.forward_hooks, *offload.backward_hooks]:
            hook.remove()
        offload.forward_hooks, offload.backward_hooks = [], []
        try:
            yield module
        finally:
            offload._register_deepspeed_module(offload.module)


def reset_optimizer_state(engine) -> None:
    """Forget Adam moments (k1.5 can reset the optimizer at each mirror-descent iteration)."""
    optimizer = engine.optimizer
    inner = getattr(optimizer, "optimizer", optimizer)
    inner.state.clear()


def weights_fingerprint(model: torch.nn.Module) -> torch.Tensor:
    """[2] float64: sum and sum of squares of every parameter (equal on ranks that hold equal weights)."""
    total = torch.zeros(2, dtype=torch.float64)
    for param in model.parameters():
        data = param.detach().double().cpu()
        total += torch.stack([data.sum(), (data * data).sum()])
    return total


def ranks_weight_difference(model: torch.nn.Module) -> float:
    """Largest difference of the weights fingerprint between ranks (0 when every rank holds the same model)."""
    fingerprint = weights_fingerprint(model).to(device())
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return 0.0
    gathered = [torch.zeros_like(fingerprint) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, fingerprint)
    stacked = torch.stack(gathered)
    return float((stacked - stacked[0]).abs().max())


# ---- checkpoints ------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain numbers, so it loads with `torch.load(weights_only=True)`."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(),  # (version, 625 ints, float or None): plain values
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def load_rng_file(path: Path) -> dict[str, Any]:
    """An RNG state file, loaded without running code (`weights_only=True`). Files written before the state
    was stored as tensors hold a numpy array: only numpy's array reconstruction is allowed for those."""
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError:
        core = getattr(np, "_core", None) or np.core
        allowed = [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, weights_only=True)


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(tuple(state["python"][:1]) + (tuple(state["python"][1]),) + tuple(state["python"][2:]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(engine, run_dir: Path, step: int, recipe_state: dict[str, Any], keep: int,
                    rank_state: dict[str, Any] | None = None) -> Path:
    """DeepSpeed state (model, optimizer, scheduler) + recipe state + this rank's RNG (and `rank_state`: what differs
    between ranks, e.g. the partial-rollout buffer; plain values), under checkpoints/step-N."""
    ckpt_root = run_dir / "checkpoints"
    tag = f"step-{step}"
    rank = dist.get_rank() if dist.is_initialized() else 0
    # RNG first: DeepSpeed writes `latest` last, so a run killed mid-save never points at a partial checkpoint.
    try:
        (ckpt_root / tag).mkdir(parents=True, exist_ok=True)
        torch.save(rng_state(), ckpt_root / tag / f"rng_rank{rank}.pt")
        if rank_state is not None:
            torch.save(rank_state, ckpt_root / tag / f"state_rank{rank}.pt")
        barrier()
        engine.save_checkpoint(str(ckpt_root), tag=tag, client_state={"recipe": recipe_state, "step": step})
        barrier()
    except Exception as err:
        latest = _latest_tag(ckpt_root)
        if latest == tag:  # `latest` is written last: this checkpoint is complete, the error came after it
            raise
        kept = f"the last complete checkpoint ({latest}) is intact" if latest else "there is no earlier checkpoint"
        raise write_failure(err, ckpt_root / tag, f"checkpoint {tag}", kept) from err
    if rank == 0:  # only checkpoints older than this one are pruned (never a newer, partial one's neighbours)
        tags = sorted((p for p in ckpt_root.glob("step-*") if p.is_dir() and p.name[5:].isdigit()
                       and int(p.name[5:]) < step), key=lambda p: int(p.name[5:]))
        for old in tags[: max(0, len(tags) - (keep - 1))]:
            shutil.rmtree(old, ignore_errors=True)
    barrier()
    return ckpt_root / tag


class CheckpointWriteError(RuntimeError):
    """A checkpoint or export that could not be written (the message says whether the disk is full)."""


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_MARGIN = 64 << 20
"""Free bytes below which a failed write is put down to a full disk (torch.save reports ENOSPC as a bare
`basic_ios::clear: iostream error` / `PytorchStreamWriter failed writing file`)."""


def _latest_tag(ckpt_root: Path) -> str | None:
    latest = ckpt_root / "latest"
    return latest.read_text().strip() if latest.is_file() else None


def disk_full(err: BaseException, path: Path) -> tuple[bool, int | None]:
    """(whether `err` was a full disk, free bytes on path's file system) for a failed write under `path`."""
    free = None
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(probe).free
    chain: BaseException | None = err
    while chain is not None:
        if isinstance(chain, OSError) and chain.errno in DISK_FULL_ERRNOS:
            return True, free
        chain = chain.__cause__ or chain.__context__
    return free is not None and free < DISK_FULL_MARGIN, free


def write_failure(err: BaseException, partial: Path, what: str, kept: str) -> CheckpointWriteError:
    """Remove the partial directory of a failed write and say what happened (naming a full disk as such);
    `kept` says what survives."""
    full, free = disk_full(err, partial)
    shutil.rmtree(partial, ignore_errors=True)
    if full:
        free_text = f"{free / 2**20:.0f} MB free" if free is not None else "no space left"
        return CheckpointWriteError(
            f"{what} could not be written: the disk holding {partial.parent} is full ({free_text}). The partial "
            f"{partial.name} was removed and {kept}; free some space and start the same command again to resume.")
    return CheckpointWriteError(f"{what} could not be written ({type(err).__name__}: {err}); the partial "
                                f"{partial.name} was removed and {kept}.")


def latest_checkpoint(run_dir: Path) -> Path | None:
    latest = run_dir / "checkpoints" / "latest"
    if not latest.is_file():
        return None
    path = run_dir / "checkpoints" / latest.read_text().strip()
    return path if path.is_dir() else None


def deepspeed_checkpoint_globals() -> list[Any]:
    """The classes DeepSpeed pickles into its checkpoint files besides tensors (ZeRO 0-3, checked on CPU)."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


def load_without_code(engine) -> None:
    """Make the engine's checkpoint loads `weights_only` (DeepSpeed's own loader unpickles anything): only
    tensors, plain values and DeepSpeed's few checkpoint classes are rebuilt, so a checkpoint directory from
    elsewhere cannot run code when resumed."""
    checkpoint_engine = engine.checkpoint_engine
    allowed = deepspeed_checkpoint_globals()

    def load(path: str, map_location: Any = None) -> Any:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location=map_location, weights_only=True)

    checkpoint_engine.load = load


def load_checkpoint(engine, run_dir: Path) -> tuple[int, dict[str, Any]] | None:
    """Restore the newest checkpoint: returns (step, recipe_state), or None when there is none."""
    path = latest_checkpoint(run_dir)
    if path is None:
        return None
    load_without_code(engine)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world_size = dist.get_world_size() if dist.is_initialized() else 1
    saved_world_size = len(list(path.glob("rng_rank*.pt")))  # one RNG file per rank that saved
    load_dir, tag = path.parent, path.name
    if saved_world_size not in (0, world_size) and zero_stage(engine) > 0:
        # ZeRO-1/2/3 partition the optimizer state by rank: DeepSpeed reloads it on another world size only from
        # its universal format (ZeRO-0 keeps it whole in one file and needs nothing).
        log.info("checkpoint %s was saved by %d ranks, resuming on %d: loading it as a universal checkpoint",
                 path, saved_world_size, world_size)
        load_dir, tag = universal_checkpoint(path), UNIVERSAL_TAG
        engine._config.load_universal_checkpoint = True
    loaded, client_state = engine.load_checkpoint(str(load_dir), tag=tag)
    if loaded is None:
        raise RuntimeError(f"checkpoint {str(path)!r} could not be loaded")
    rng_file = path / f"rng_rank{rank}.pt"
    if rng_file.is_file():
        set_rng_state(load_rng_file(rng_file))
    elif saved_world_size != world_size:  # a rank the saving run did not have keeps its seeded start state
        log.warning("checkpoint %s has no RNG state for rank %d (saved by %d ranks): it keeps its seeded state",
                    path, rank, saved_world_size)
    else:
        raise RuntimeError(f"checkpoint {str(path)!r} has no RNG state for rank {rank}")
    return int(client_state["step"]), client_state["recipe"]


UNIVERSAL_TAG = "universal"
"""Where inside checkpoints/step-N DeepSpeed's universal form of that checkpoint is written (pruned with it)."""


def universal_checkpoint(path: Path) -> Path:
    """Convert DeepSpeed checkpoint `path` (ZeRO-1/2/3) to DeepSpeed's universal format, once, into
    path/universal (rank 0 converts, every rank waits); returns the load_dir to pass with tag `UNIVERSAL_TAG`.

    The universal form holds each parameter's fp32 weight and Adam moments whole, so any number of ranks can
    re-partition them (deepspeed.checkpoint.ds_to_universal; `--inject_missing_state` because mmreason's
    checkpoints carry no Megatron-style layout info, which plain data parallelism does not need).
    """
    from types import SimpleNamespace

    out = path / UNIVERSAL_TAG
    rank = dist.get_rank() if dist.is_initialized() else 0
    if rank == 0 and not (out / "zero").is_dir():
        from deepspeed.checkpoint.ds_to_universal import main as ds_to_universal

        staging = path / f".{UNIVERSAL_TAG}-staging"
        shutil.rmtree(staging, ignore_errors=True)
        ds_to_universal(SimpleNamespace(input_folder=str(path), output_folder=str(staging), num_extract_workers=1,
                                        num_merge_workers=1, keep_temp_folder=False, strict=True,
                                        inject_missing_state=True))
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    barrier()
    return path


def load_rank_state(run_dir: Path, step: int) -> dict[str, Any] | None:
    """This rank's `rank_state` saved with checkpoint step-N (None when it saved none); plain values only."""
    rank = dist.get_rank() if dist.is_initialized() else 0
    path = Path(run_dir) / "checkpoints" / f"step-{step}" / f"state_rank{rank}.pt"
    return torch.load(path, weights_only=True) if path.is_file() else None


def export_hf(engine, processor, run_dir: Path, step: int) -> Path | None:
    """`save_pretrained` of model and processor to hf/latest (replaced atomically); rank 0 writes."""
    module = engine.module
    state_dict = None
    rank = dist.get_rank() if dist.is_initialized() else 0
    if is_lora(module):  # LoRA: adapters merged into an ordinary checkpoint (ZeRO-3: gathered module by module)
        state_dict = merged_state_dict(module, keep=rank == 0)
        module = base_model(module)
    elif zero_stage(engine) == 3:  # parameters are sharded: gather a full copy (collective on all ranks)
        state_dict = engine._zero3_consolidated_16bit_state_dict()
    out = run_dir / "hf" / "latest"
    if rank == 0:
        staging = run_dir / "hf" / f".staging-{step}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            module.save_pretrained(staging, state_dict=state_dict)
            processor.save_pretrained(staging)
            (staging / "mmreason_step.json").write_text(json.dumps({"step": step}))
        except Exception as err:
            raise write_failure(err, staging, f"the Hugging Face export of step {step}",
                                "the previous export in hf/latest is intact") from err
        old = run_dir / "hf" / ".old"
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    barrier()
    return out
