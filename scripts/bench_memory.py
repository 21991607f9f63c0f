"""Peak memory (RSS) of one RL micro-batch update on the tiny model with long responses, before and after each memory
change of issue 27, each measured in a fresh process on the CPU.

    python scripts/bench_memory.py [--response-tokens 1024] [--vocab 65536] [--rows 4]

Cases:
- log-probs `full_logits`: the old path, fp32 logits over prompt + response, log-softmax, and the entropy metric's
  copy of the response logits on the CPU; `chunked`: mmreason.logprobs.response_logprobs (output head and fp32
  softmax train.logit_chunk_tokens positions at a time, recomputed in backward). The tiny model's output head is
  resized to --vocab so the logits weigh what they do at scale (Qwen2.5-VL: 151,936).
- reference `replicated` / `partitioned` / `offloaded`: a frozen reference of the same model beside the policy on
  each of 2 gloo ranks (algo.reference_placement): the RSS rank 0 holds for it after one reference forward.

- micro-batches `rows` / `tokens`: one update pass over 8 responses of mixed lengths (one of --response-tokens,
  the rest 1/16 to 1/4 of it, the long one in the first micro-batch), cut into micro-batches of 4 rows
  (train.micro_batch_size) or by a budget of 2 x --response-tokens tokens (train.micro_batch_tokens), through
  the RL loop's own `plan_micro_batches` and log-prob path; also prints the (prompt + response) positions
  forwarded, padding included.

Prints one line per case and the peak RSS in MiB; the numbers depend on the machine, the ratios much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from mmreason.distributed import shutdown_distributed

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def current_rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load(checkpoint: str, vocab: int):
    import torch

    from mmreason.config import ModelConfig
    from mmreason.models import load_policy

    torch.manual_seed(0)
    model, processor = load_policy(ModelConfig(path=checkpoint, freeze_vision=True))
    model.resize_token_embeddings(vocab)
    model.config.tie_word_embeddings = False
    return model, processor


def logprob_case(checkpoint: str, vocab: int, rows: int, response_tokens: int, method: str, chunk_tokens: int) -> float:
    import torch

    from mmreason.logprobs import forward_logits, response_logprobs, token_entropy

    model, processor = load(checkpoint, vocab)
    prompt = processor.tokenizer(["How many dots are there? Think step by step."] * rows, return_tensors="pt")
    generator = torch.Generator().manual_seed(0)
    response = torch.randint(0, vocab, (rows, response_tokens), generator=generator)
    input_ids = torch.cat([prompt["input_ids"], response], dim=1)
    attention_mask = torch.ones_like(input_ids)
    mask = torch.ones_like(response)
    baseline = peak_rss_mib()
    if method == "full_logits":
        logits = forward_logits(model, input_ids, attention_mask)  # [b, P + L, V] fp32
        response_logits = logits[:, -response_tokens - 1 : -1]
        logp = torch.log_softmax(response_logits, -1).gather(-1, response.unsqueeze(-1)).squeeze(-1)
        token_entropy(response_logits.detach().cpu().clone(), mask)  # the old per-micro-batch CPU copy
    else:
        logp, _ = response_logprobs(model, {"input_ids": input_ids, "attention_mask": attention_mask}, response, mask,
                                    chunk_tokens=chunk_tokens)
    (logp * mask).sum().backward()
    return peak_rss_mib() - baseline


def micro_batch_case(checkpoint: str, vocab: int, response_tokens: int, plan: str, chunk_tokens: int) -> dict[str, float]:
    import torch

    from mmreason.rl.loop import plan_micro_batches, response_logprobs
    from mmreason.rl.rollout import Rollout

    model, processor = load(checkpoint, vocab)
    lengths = [response_tokens] + [response_tokens // d for d in (16, 4, 8, 16, 4, 8, 16)]  # the long row comes first
    prompt = processor.tokenizer("How many dots are there? Think step by step.", return_tensors="pt")
    rows = len(lengths)
    generator = torch.Generator().manual_seed(0)
    response_ids = torch.randint(0, vocab, (rows, response_tokens), generator=generator)
    response_mask = (torch.arange(response_tokens)[None, :] < torch.tensor(lengths)[:, None]).long()
    rollout = Rollout(prompt_ids=prompt["input_ids"].repeat(rows, 1), prompt_mask=prompt["attention_mask"].repeat(rows, 1),
                      response_ids=response_ids * response_mask, response_mask=response_mask,
                      truncated=torch.zeros(rows, dtype=torch.bool), repetitive=torch.zeros(rows, dtype=torch.bool),
                      texts=[""] * rows, prompt_index=torch.arange(rows), problems=[None] * rows,
                      pixel_values=[None] * rows, image_grid_thw=[None] * rows)
    budget = 2 * response_tokens if plan == "tokens" else 0
    micro_batches = plan_micro_batches(rollout, micro_batch_size=4, token_budget=budget)
    baseline = peak_rss_mib()
    positions = 0
    for batch_rows in micro_batches:
        logp, _ = response_logprobs(model, rollout, batch_rows, temperature=1.0, chunk_tokens=chunk_tokens)
        (logp * response_mask[batch_rows]).sum().backward()
        widest = int(response_mask[batch_rows].sum(dim=1).max()) + prompt["input_ids"].shape[1]
        positions += widest * len(batch_rows)
    return {"rss": peak_rss_mib() - baseline, "positions": positions, "micro_batches": len(micro_batches)}


def reference_case(checkpoint: str, vocab: int, placement: str) -> dict[str, float]:
    import torch
    import torch.distributed as dist

    from mmreason.config import AlgoConfig
    from mmreason.rl.reference import ReferencePolicy

    dist.init_process_group("gloo")
    model, processor = load(checkpoint, vocab)
    baseline = current_rss_mib()
    reference = ReferencePolicy(AlgoConfig(name="grpo", beta=0.04, reference_placement=placement), model)
    ids = processor.tokenizer(["What is 2 + 3?"], return_tensors="pt")
    with torch.no_grad():
        reference.model(**ids, use_cache=False)
    grown = current_rss_mib() - baseline  # memory the reference keeps for the whole run
    # The parameter bytes this rank holds: its ZeRO-3 partition (ds_tensor) when partitioned, else the whole tensor.
    held = sum((p.ds_tensor if hasattr(p, "ds_tensor") else p).numel() * p.element_size()
               for p in reference.model.parameters()) / 2**20
    shutdown_distributed()
    return {"rss": grown, "params": held}


def run_child(args: list[str], ranks: int = 1, options: list[str] = ()):
    from mmreason.ports import free_port

    port = str(free_port())
    procs = []
    for rank in range(ranks):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(ranks),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, __file__, *options, "--child", *args], env=env, cwd=REPO,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [proc.communicate() for proc in procs]
    for proc, (_out, err) in zip(procs, outputs):
        if proc.returncode != 0:
            raise SystemExit(f"bench_memory: case {args} failed:\n{err[-3000:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])["mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--response-tokens", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=65536, help="output vocabulary the tiny model is resized to")
    parser.add_argument("--rows", type=int, default=4, help="sequences in the micro-batch")
    parser.add_argument("--chunk-tokens", type=int, default=512, help="train.logit_chunk_tokens for the chunked case")
    parser.add_argument("--checkpoint", help="a tiny checkpoint (built in a temporary directory when not given)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, checkpoint, *rest = args.child
        if kind == "logprobs":
            mib = logprob_case(checkpoint, args.vocab, args.rows, args.response_tokens, rest[0], args.chunk_tokens)
        elif kind == "micro_batches":
            mib = micro_batch_case(checkpoint, args.vocab, args.response_tokens, rest[0], args.chunk_tokens)
        else:
            mib = reference_case(checkpoint, args.vocab, rest[0])
        print(json.dumps({"mib": mib}))  # a number, or for the reference {rss, params}
        return
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or str(Path(tmp) / "tiny")
        if not args.checkpoint:
            subprocess.run([sys.executable, str(REPO / "scripts" / "make_tiny_model.py"), "--out", checkpoint],
                           check=True, capture_output=True)
        sizes = [f"--rows={args.rows}", f"--response-tokens={args.response_tokens}", f"--vocab={args.vocab}",
                 f"--chunk-tokens={args.chunk_tokens}"]
        print(f"one micro-batch of {args.rows} x {args.response_tokens} response tokens, vocabulary {args.vocab}, "
              f"chunks of {args.chunk_tokens} positions")
        results = {}
        for method in ("full_logits", "chunked"):
            results[method] = run_child(["logprobs", checkpoint, method], options=sizes)
            print(f"log-probs {method:12s} peak RSS growth {results[method]:8.1f} MiB")
        print(f"log-probs: chunked uses {results['chunked'] / results['full_logits']:.2f}x the memory of full logits")
        for plan in ("rows", "tokens"):
            results[plan] = run_child(["micro_batches", checkpoint, plan], options=sizes)
            case = results[plan]
            print(f"micro-batches by {plan:6s} {case['micro_batches']} micro-batches, {case['positions']:6d} positions "
                  f"forwarded, peak RSS growth {case['rss']:8.1f} MiB")
        for placement in ("replicated", "partitioned", "offloaded"):
            results[placement] = run_child(["reference", checkpoint, placement], ranks=2, options=sizes)
            held = results[placement]
            print(f"reference {placement:12s} on rank 0 of 2: parameters held {held['params']:7.1f} MiB, "
                  f"RSS growth {held['rss']:7.1f} MiB")
        print("(on the CPU, RSS keeps what the whole copy took before it was partitioned: the allocator does not hand "
              "freed memory back; the parameter bytes are what a GPU would hold)")


if __name__ == "__main__":
    main()
