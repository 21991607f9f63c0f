"""Generation engines behind the one interface in `mmreason.generation` (`Engine`).

- `hf`: transformers' `generate` on the live policy (no copy of its own; sync/sleep/wake do nothing).
- `vllm`: a vLLM engine colocated with the trainer, one per rank, holding its own weights; `sync_weights`
  after every optimizer step (mmreason/engines/vllm.py). Needs vLLM (docs/engines.md: `pip install -e ".[vllm]"`
  on a GPU machine, `bash scripts/install_vllm.sh` on CPU).

    engine = build_engine(cfg.rollout, model_path=cfg.model.path, processor=processor, model=policy, seed=seed)
    out = engine.generate(policy, processor, prompts, num_samples=G, temperature=1.0, max_new_tokens=L)
    ...update...
    engine.sync_weights(policy)
"""

from __future__ import annotations

from typing import Any

import torch

from mmreason.config import ENGINES, RolloutConfig
from mmreason.engines.hf import HFEngine
from mmreason.generation import Engine

__all__ = ["ENGINES", "Engine", "HFEngine", "build_engine", "logprob_abs_diff", "sampling_engine"]


def build_engine(cfg: RolloutConfig, *, model_path: str, processor: Any, model: Any, seed: int = 0) -> Engine:
    """The engine `cfg.engine` names, ready to generate from `model`'s current weights.

    `model` is the policy (its dtype and generation config decide the engine's); for vllm its weights are
    loaded from `model_path` and then synced from `model`, so a resumed policy is what the engine samples.
    """
    if cfg.engine == "hf":
        return HFEngine()
    if cfg.engine == "vllm":
        from mmreason.engines.vllm import VLLMEngine

        engine = VLLMEngine(model_path, processor, model, cfg, seed=seed)
        engine.sync_weights(model)
        return engine
    raise ValueError(f"config key 'rollout.engine': {cfg.engine!r} is not a generation engine; expected one of {list(ENGINES)}")


def sampling_engine(name: str, *, model_path: str, processor: Any, model: Any, seed: int = 0) -> Engine | None:
    """For callers that sample from a fixed model (MathVista `run`, curation's model steps, rejection sampling):
    None for hf (they then call transformers' generate on `model`), else engine `name` built with the default
    `rollout.vllm_*` settings and holding `model`'s weights. The caller closes it."""
    if name == "hf":
        return None
    return build_engine(RolloutConfig(engine=name), model_path=model_path, processor=processor, model=model, seed=seed)


def logprob_abs_diff(engine_logprobs: torch.Tensor, trainer_logprobs: torch.Tensor,
                     response_mask: torch.Tensor) -> torch.Tensor:
    """|engine - trainer| log-prob of every response token: [N, L] x3 -> [tokens] (the mean is rollout/logprob_diff).

    The sampler/trainer agreement check of verl and TRL: near 0 when the engine samples from the weights the
    trainer scores with; it grows when weight sync, dtype or kernels disagree.
    """
    if engine_logprobs.shape != trainer_logprobs.shape or trainer_logprobs.shape != response_mask.shape:
        raise ValueError(f"logprob_abs_diff: shapes {tuple(engine_logprobs.shape)}, {tuple(trainer_logprobs.shape)}, "
                         f"{tuple(response_mask.shape)} differ")
    keep = response_mask.bool()
    return (engine_logprobs.float() - trainer_logprobs.float()).abs()[keep]
