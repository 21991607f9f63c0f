"""Worker for test_reference_snapshot_ranks.py: k1.5's snapshot reference refreshed from a DeepSpeed policy under
ZeRO-0, 2 and 3 on two gloo ranks. Prints one JSON line (rank 0): per stage, the largest difference between the
snapshot and the policy's gathered weights after an update, and how far the update moved the policy."""

import json
import sys

import torch
import torch.distributed as dist

from mmreason.config import AlgoConfig, Config, ModelConfig
from mmreason.distributed import shutdown_distributed
from mmreason.engine import build_engine
from mmreason.engines.weights import iter_module_weights
from mmreason.models import load_policy
from mmreason.rl.reference import ReferencePolicy


def full_weights_on_cpu(module):
    return dict(iter_module_weights(module))  # gathered module by module under ZeRO-3 (a collective)


def main() -> None:
    checkpoint = sys.argv[1]
    dist.init_process_group("gloo")
    results = {}
    for stage, placement in ((0, "replicated"), (2, "replicated"), (3, "replicated"), (3, "partitioned"), (2, "offloaded")):
        torch.manual_seed(0)
        model, processor = load_policy(ModelConfig(path=checkpoint, freeze_vision=False))
        cfg = Config()
        cfg.train.zero_stage, cfg.train.micro_batch_size, cfg.train.max_steps = stage, 1, 4
        cfg.optim.lr = 1e-2
        reference = ReferencePolicy(AlgoConfig(name="k15", reference_refresh_every=2, reference_placement=placement), model)
        engine = build_engine(model, cfg.optim, cfg.train, micro_batch_size=1, grad_accum=1, world_size=2)
        before = full_weights_on_cpu(engine.module)
        ids = processor.tokenizer(["What is 2 + 3? It is 5."], return_tensors="pt")
        out = engine(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"], use_cache=False)
        engine.backward(out.logits.float().pow(2).mean())
        engine.step()
        reference.begin_step(3, engine.module, reset_optimizer=lambda: None)  # step 3 opens the second iteration
        after = full_weights_on_cpu(engine.module)
        snapshot = full_weights_on_cpu(reference.model)  # gathered too when the reference is partitioned
        ids = {k: v for k, v in ids.items()}
        with torch.no_grad():  # the reference's forward: a collective when it is partitioned
            ref_logits = reference.model(**ids, use_cache=False).logits
            policy_logits = engine.module(**ids, use_cache=False).logits
        results[f"zero{stage}-{placement}"] = {
            "logits_vs_policy": float((ref_logits - policy_logits).abs().max()),
            "snapshot_vs_policy": max(float((snapshot[name] - value).abs().max()) for name, value in after.items()
                                      if name in snapshot),
            "update_moved": max(float((after[name] - before[name]).abs().max()) for name in after),
        }
        engine.destroy()
    if dist.get_rank() == 0:
        print(json.dumps(results), flush=True)
    shutdown_distributed()


if __name__ == "__main__":
    main()
