"""Driver of scripts/gpu_smoke.sh (see there): build a random-initialised Qwen2.5-VL checkpoint with the 3B model's
exact architecture (or tiny dimensions with --small), and run RL steps in-process reporting peak memory, step
time and tokens/s.

    python scripts/gpu_smoke.py build --out DIR [--small]
    deepspeed --num_gpus 1 scripts/gpu_smoke.py run --label NAME -- --config FILE key=value ...   (train.py's arguments)

NEVER RUN ON A GPU YET: written and tested on CPU only (`--small`); the 3B numbers are for the first GPU run.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from pathlib import Path

# Qwen/Qwen2.5-VL-3B-Instruct's config.json: the text model and the vision tower, dimension for dimension.
QWEN25_VL_3B_TEXT = dict(
    vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
    num_key_value_heads=2, max_position_embeddings=128000, rope_theta=1000000.0, rms_norm_eps=1e-6,
    hidden_act="silu", rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]}, tie_word_embeddings=True,
    use_sliding_window=False, sliding_window=32768, max_window_layers=70, attention_dropout=0.0,
)
QWEN25_VL_3B_VISION = dict(
    depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, in_channels=3, out_hidden_size=2048,
    patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31],
    tokens_per_second=2, hidden_act="silu",
)
QWEN25_VL_3B_PIXELS = dict(min_pixels=256 * 28 * 28, max_pixels=1280 * 28 * 28)
"""The processor limits Qwen's model card suggests (256-1280 visual tokens per image)."""

# --small: the same architecture at toy size, so the whole script runs on CPU in a test.
SMALL_TEXT = dict(QWEN25_VL_3B_TEXT, vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                  rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]})
SMALL_VISION = dict(QWEN25_VL_3B_VISION, depth=2, hidden_size=64, intermediate_size=128, num_heads=4,
                    out_hidden_size=64, fullatt_block_indexes=[1])
SMALL_PIXELS = dict(min_pixels=56 * 56, max_pixels=112 * 112)


def build(out: Path, small: bool) -> None:
    """Random weights (bf16 on a GPU, built on it), a locally trained tokenizer; saved as an HF checkpoint."""
    import torch
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

    from mmreason.tiny import CHAT_TEMPLATE, SPECIAL_TOKENS, builtin_corpus, train_tokenizer

    text, vision, pixels = (SMALL_TEXT, SMALL_VISION, SMALL_PIXELS) if small else (
        QWEN25_VL_3B_TEXT, QWEN25_VL_3B_VISION, QWEN25_VL_3B_PIXELS)
    tokenizer = train_tokenizer(builtin_corpus(), 1024)  # the model keeps its full vocabulary; extra rows go unused
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    special = dict(eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], bos_token_id=None)
    config = Qwen2_5_VLConfig(text_config=dict(text, **special), vision_config=vision,
                              image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                              vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
                              tie_word_embeddings=True, **special)
    gpu = torch.cuda.is_available()
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.device("cuda" if gpu else "cpu"):
        model = Qwen2_5_VLForConditionalGeneration(config).to(torch.bfloat16 if gpu else torch.float32)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = None
    model.save_pretrained(out)
    Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(**pixels), tokenizer=tokenizer,
                        video_processor=Qwen2VLVideoProcessor(), chat_template=CHAT_TEMPLATE).save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    print(f"built {out}: {params / 1e6:,.1f} M parameters ({'bf16 on GPU' if gpu else 'fp32 on CPU'}) in "
          f"{time.perf_counter() - start:.0f} s", flush=True)


class PeakMemory:
    """Peak memory while the block runs: on a GPU the device-wide use (every process on it, a vLLM engine's
    included), polled twice a second, and torch's own peak in this process; on CPU the peak RSS."""

    def __init__(self) -> None:
        import torch

        self.gpu = torch.cuda.is_available()
        self.peak_device = 0
        self._stop = threading.Event()

    def _poll(self) -> None:
        import torch

        while not self._stop.wait(0.5):
            free, total = torch.cuda.mem_get_info()
            self.peak_device = max(self.peak_device, total - free)

    def __enter__(self) -> "PeakMemory":
        if self.gpu:
            threading.Thread(target=self._poll, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def report(self) -> dict[str, float]:
        import torch

        if self.gpu:
            return {"peak_device_gib": self.peak_device / 2**30,
                    "peak_torch_allocated_gib": torch.cuda.max_memory_allocated() / 2**30}
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        return {"peak_rss_gib": own}


def run(label: str, train_args: list[str]) -> None:
    """mmreason/train.py's main in this process (checkpoint and HF export skipped: a 3B ZeRO-3 checkpoint with
    Adam state is ~60 GB to write), then one line per step and a summary."""
    import torch.distributed as dist

    import mmreason.rl.loop as rl_loop
    from mmreason import train
    from mmreason.config import load_config, parse_cli
    from mmreason.metrics import read_metrics

    rl_loop.save_checkpoint = lambda *args, **kwargs: None
    rl_loop.export_hf = lambda *args, **kwargs: None
    if hasattr(rl_loop, "after_export"):  # writes into the (skipped) export
        rl_loop.after_export = lambda *args, **kwargs: None
    path, overrides = parse_cli(train_args)
    run_dir = Path(load_config(path, overrides).train.output_dir)
    with PeakMemory() as memory:
        start = time.perf_counter()
        train.main(train_args)
        total = time.perf_counter() - start
    if dist.is_initialized() and dist.get_rank() != 0:
        return
    steps = read_metrics(run_dir / "metrics.jsonl")
    for m in steps:
        step_time = sum(v for k, v in m.items() if k.startswith("time/"))
        print(f"[{label}] step {m['step']}: {step_time:.1f} s (generate {m['time/generate']:.1f} s), "
              f"{m['tokens_per_s']:.0f} new tokens/s, mean response {m['response_length/mean']:.0f} tokens", flush=True)
    summary = {"label": label, "steps": len(steps), "wall_s": total,
               "step_time_s": [sum(v for k, v in m.items() if k.startswith("time/")) for m in steps],
               "tokens_per_s": [m["tokens_per_s"] for m in steps],
               "response_length_mean": [m["response_length/mean"] for m in steps], **memory.report()}
    print("SMOKE " + json.dumps(summary), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the random-initialised checkpoint")
    b.add_argument("--out", required=True, type=Path)
    b.add_argument("--small", action="store_true", help="tiny dimensions (CPU)")
    r = sub.add_parser("run", help="RL steps in this process (under the deepspeed launcher)")
    r.add_argument("--label", required=True)
    argv = [a for a in sys.argv[1:] if not a.startswith("--local_rank") and not a.startswith("--local-rank")]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    if args.command == "build":
        build(args.out, args.small)
    else:
        run(args.label, argv[split + 1:])


if __name__ == "__main__":
    main()
