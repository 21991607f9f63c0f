"""Worker for test_multinode.py: on one rank, load a run's newest checkpoint (saved by two ranks under ZeRO-2) the
way the RL recipe does and print (JSON) what came back: the step, the sampler state, and how the restored Adam
moments compare with the two ranks' optimizer shards (concatenated in rank order: ZeRO-2's flat partitions).

    python tests/e2e/resume_probe.py RUN_DIR key=value ...   (the run's own config overrides)
"""

import json
import sys
from pathlib import Path

import torch

from mmreason.config import load_config
from mmreason.distributed import init_distributed
from mmreason.engine import build_engine, load_checkpoint
from mmreason.models import load_policy


def main() -> None:
    run_dir = Path(sys.argv[1])
    cfg = load_config(run_dir / "config.yaml", sys.argv[2:])
    init_distributed()
    model, _ = load_policy(cfg.model)
    rows = cfg.rollout.prompts_per_step * cfg.rollout.group_size
    engine = build_engine(model, cfg.optim, cfg.train, micro_batch_size=cfg.train.micro_batch_size,
                          grad_accum=rows // cfg.train.micro_batch_size, world_size=1)
    step, recipe = load_checkpoint(engine, run_dir)
    shards = sorted((run_dir / "checkpoints" / f"step-{step}").glob("zero_pp_rank_*_optim_states.pt"))
    saved = [torch.load(path, weights_only=False)["optimizer_state_dict"]["base_optimizer_state"]["state"][0]
             for path in shards]
    state = engine.optimizer.optimizer.state[engine.optimizer.single_partition_of_fp32_groups[0]]
    out = {"step": step, "sampler": recipe["sampler"], "shards": len(shards), "adam_step": float(state["step"])}
    for key in ("exp_avg", "exp_avg_sq"):
        expected = torch.cat([s[key] for s in saved])
        restored = state[key]
        n = min(len(expected), len(restored))
        out[key] = {"numel": [len(expected), len(restored)], "max_diff": float((expected[:n] - restored[:n]).abs().max()),
                    "max_abs": float(expected.abs().max())}
    print("PROBE " + json.dumps(out, default=str))


if __name__ == "__main__":
    main()
