"""Worker for test_uneven_generation.py: under a two-rank gloo trainer each rank's vLLM engine runs in the rank's
process (external-launcher mode, joining the trainer's process group) and the ranks generate unevenly: rank 0 one
short text-only call, rank 1 three longer calls with images. If the engine issued a collective while generating,
the ranks would wait on each other and never finish. Then the trainer's own collectives and a weight sync still work.

Run by the deepspeed launcher (RANK, WORLD_SIZE, MASTER_* in the environment); the argument is the checkpoint. Prints
(rank 0) one JSON line: the placement and each rank's generate calls and response tokens.
"""

import json
import sys

import torch
import torch.distributed as dist
from engine_helpers import dots

from mmreason.config import ModelConfig, RolloutConfig
from mmreason.distributed import shutdown_distributed
from mmreason.engines import build_engine
from mmreason.generation import encode
from mmreason.models import load_policy
from mmreason.problem import Problem

# (prompts, new tokens) of each generate call, per rank; lengths are forced, so the token counts are exact.
CALLS = {0: [(1, 4)], 1: [(2, 24), (3, 24), (1, 24)]}
SAMPLES = 2


def problem(rank: int, index: int) -> Problem:
    if rank == 0:
        return Problem(pid=f"t{index}", question=f"What is {index} + 2?", answer=str(index + 2), answer_type="integer")
    return Problem(pid=f"i{index}", question="How many dots?", answer=str(index + 1), answer_type="integer",
                   images=[dots(index + 1)])


def main() -> None:
    checkpoint = next(a for a in sys.argv[1:] if not a.startswith("--local_rank"))  # the launcher adds --local_rank
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model, processor = load_policy(ModelConfig(path=checkpoint, dtype="float32"))
    engine = build_engine(RolloutConfig(engine="vllm"), model_path=checkpoint, processor=processor, model=model,
                          seed=rank)
    tokens = 0
    for count, new_tokens in CALLS[rank]:
        prompts = encode(processor, [problem(rank, i) for i in range(count)], "r1_boxed", with_images=True)
        out = engine.generate(model, processor, prompts, num_samples=SAMPLES, temperature=1.0,
                              max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        tokens += int(out.response_mask.sum())
    per_rank: list = [None] * dist.get_world_size()
    dist.all_gather_object(per_rank, {"calls": len(CALLS[rank]), "tokens": tokens})  # the trainer's collective
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    engine.sync_weights(model)  # a sync after uneven generation, then one more call on every rank
    engine.generate(model, processor, encode(processor, [problem(0, 0)], "r1_boxed", with_images=True),
                    num_samples=1, temperature=0.0, max_new_tokens=4)
    if rank == 0:
        print(json.dumps({"placement": engine.placement, "ranks": per_rank}), flush=True)
    engine.close()  # a collective here: vLLM's shutdown takes the trainer's process group with it
    shutdown_distributed()  # as train.py ends


if __name__ == "__main__":
    main()
