"""Generate answers to MathVista with a checkpoint, then score them: the `run` subcommand of mmreason/eval/cli.py.

    python -m mmreason.eval.cli run --model CKPT --data testmini.parquet --out results/
    deepspeed --num_gpus 8 scripts/eval_mathvista.py run --model CKPT --data testmini.parquet --out results/

Steps: load the problems with their images (MathVista parquet / jsonl or our
shards), keep the first `--limit`, render each prompt (MathVista's own
`query` by default, template `mathvista_query`; any template of
configs/prompts/ or a .jinja path with `--template`), generate with
`mmreason.generation.generate` (greedy for one sample, temperature 0.7 by
default for several), write predictions.jsonl, then score it exactly as
the `score` subcommand does (mmreason/eval/predictions.py).

Several ranks: when the launcher sets RANK and WORLD_SIZE the process group
is started and rank r answers problems r, r + W, r + 2W, ...; it writes
predictions.rank{r}.jsonl and rank 0 merges them into predictions.jsonl in
the data's order and scores. Rank 0 waits for the other ranks' files rather
than in a collective barrier: ranks finish at different times, and a long
evaluation would exceed the process group's timeout (30 minutes by default)
inside a barrier. --out must therefore be a directory every rank can see.

Outputs in --out: predictions.jsonl, scores.json, scores.md, per_problem.jsonl
and generation.json (the settings, problem count, world size, wall time and
the mean response length in tokens).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmreason.eval.load import MathVistaError, load_mathvista
from mmreason.eval.predictions import (
    SampledPrediction,
    mean_response_length,
    read_predictions,
    score_file,
    write_predictions,
)
from mmreason.eval.scoring import Prediction
from mmreason.problem import Problem

DEFAULT_TEMPLATE = "mathvista_query"
DEFAULT_SAMPLING_TEMPERATURE = 0.7
"""Temperature used with --samples K > 1 when --temperature is not given (a common choice for pass@1 over samples)."""
RANK_FILE_POLL_SECONDS = 1.0


class RunError(MathVistaError):
    """Bad run settings, an unloadable checkpoint or template, or rank outputs that do not add up."""


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides what `run` generates; written to generation.json."""

    model: str
    """Checkpoint directory or hub id (any HF image-text-to-text model)."""
    data: str
    """MathVista-schema .parquet / .jsonl, a directory of them, or our shards."""
    template: str = DEFAULT_TEMPLATE
    """Prompt template name under configs/prompts/ or a .jinja path."""
    system_prompt: str | None = None
    """Optional system message before the user turn."""
    samples: int = 1
    """Responses per problem (K); accuracy is then pass@1 averaged over the K samples."""
    temperature: float = 0.0
    """Sampling temperature; 0 is greedy."""
    top_p: float = 1.0
    """Nucleus sampling threshold (only when temperature > 0)."""
    max_new_tokens: int = 1024
    """Longest response in tokens; longer ones are cut."""
    batch_size: int = 16
    """Prompts per `generate` call on each rank."""
    limit: int | None = None
    """Answer only the first N problems of the data (None: all)."""
    seed: int = 0
    """Sampling seed (rank r uses seed + r)."""
    dtype: str = "auto"
    """Model dtype: auto (bf16 on a GPU that has it, else fp32), float32, bfloat16, float16."""
    min_pixels: int | None = None
    """Processor min_pixels override (None keeps the checkpoint's)."""
    max_pixels: int | None = None
    """Processor max_pixels override: bounds image tokens per image (pixels / 28^2)."""
    engine: str = "hf"
    """Generation engine: hf (transformers generate) or vllm (a vLLM engine per rank; docs/engines.md)."""


def resolve_temperature(samples: int, temperature: float | None) -> float:
    """Greedy for one sample, DEFAULT_SAMPLING_TEMPERATURE for several; K greedy samples would all be equal."""
    if samples < 1:
        raise RunError(f"--samples must be at least 1, got {samples}")
    if temperature is None:
        return 0.0 if samples == 1 else DEFAULT_SAMPLING_TEMPERATURE
    if temperature < 0:
        raise RunError(f"--temperature must be >= 0, got {temperature}")
    if samples > 1 and temperature == 0:
        raise RunError(f"--samples {samples} with --temperature 0 gives {samples} identical greedy responses; "
                       "give a temperature > 0 (or leave it out for the default 0.7)")
    return temperature


def rank_share(problems: Sequence[Problem], rank: int, world_size: int) -> list[Problem]:
    """The problems rank `rank` answers: indices i with i % world_size == rank."""
    return list(problems[rank::world_size])


def rank_file(out_dir: Path, rank: int) -> Path:
    return out_dir / f"predictions.rank{rank}.jsonl"


# ---------------------------------------------------------------- generation


def generate_predictions(model: Any, processor: Any, problems: Sequence[Problem], settings: RunSettings,
                         progress: bool = False, engine: Any = None) -> list[SampledPrediction]:
    """settings.samples responses per problem, as prediction lines (problem order, then sample order); `engine`
    None is transformers' generate on `model`, else an engine (mmreason.engines) holding `model`'s weights."""
    from mmreason.generation import generate_samples

    samples = generate_samples(
        model, processor, problems, template=settings.template, num_samples=settings.samples,
        temperature=settings.temperature, top_p=settings.top_p, max_new_tokens=settings.max_new_tokens,
        batch_size=settings.batch_size, system_prompt=settings.system_prompt, progress=progress, engine=engine,
    )
    return [
        SampledPrediction(Prediction(pid=problem.pid, response=sample.text), sample=index, num_tokens=sample.num_tokens)
        for problem, problem_samples in zip(problems, samples)
        for index, sample in enumerate(problem_samples)
    ]


# ---------------------------------------------------------------- ranks


def write_rank_file(out_dir: Path, rank: int, lines: Sequence[SampledPrediction]) -> Path:
    """Write to a temporary name and rename, so rank 0 never reads a half-written file."""
    final = rank_file(out_dir, rank)
    partial = final.with_suffix(".jsonl.partial")
    write_predictions(partial, lines, with_sample=True)  # the merge checks sample indices, even with one sample
    os.replace(partial, final)
    return final


def wait_for_files(paths: Sequence[Path], poll_seconds: float = RANK_FILE_POLL_SECONDS) -> None:
    """Block until every path exists (the launcher stops all ranks if one of them fails)."""
    while not all(path.exists() for path in paths):
        time.sleep(poll_seconds)


def merge_rank_files(out_dir: Path, problems: Sequence[Problem], world_size: int, samples: int) -> list[SampledPrediction]:
    """All ranks' lines in the data's order; every problem must have exactly `samples` responses."""
    found: dict[tuple[str, int], SampledPrediction] = {}
    for rank in range(world_size):
        path = rank_file(out_dir, rank)
        for line in read_predictions(path):
            key = (line.prediction.pid, line.sample)
            if key in found:
                raise RunError(f"{path}: pid {key[0]!r} sample {key[1]} was also answered by another rank")
            found[key] = line
    merged = []
    for problem in problems:
        for sample in range(samples):
            line = found.pop((problem.pid, sample), None)
            if line is None:
                raise RunError(f"{out_dir}: no rank file has pid {problem.pid!r} sample {sample}")
            merged.append(line)
    if found:
        extra = sorted({pid for pid, _ in found})
        raise RunError(f"{out_dir}: rank files answer pids that are not in this run: {extra[:5]}")
    return merged


def distributed_context() -> tuple[int, int]:
    """(rank, world_size): the process group is started only when a launcher set RANK and WORLD_SIZE."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        from mmreason.distributed import init_distributed

        return init_distributed()
    return 0, 1


def _start_barrier(out_dir: Path, rank: int, world_size: int) -> None:
    """Remove this rank's file from an earlier run before anyone generates, so rank 0 cannot merge a stale one."""
    for path in (rank_file(out_dir, rank), rank_file(out_dir, rank).with_suffix(".jsonl.partial")):
        path.unlink(missing_ok=True)
    if world_size > 1:
        from mmreason.distributed import barrier

        barrier()  # everyone is at the same point here (before loading the model), so no long wait


# ---------------------------------------------------------------- the run


def load_problems(settings: RunSettings) -> list[Problem]:
    problems = load_mathvista(settings.data, with_images=True)
    if settings.limit is not None:
        problems = problems[: settings.limit]
    if not problems:
        raise RunError(f"{settings.data}: no problems to evaluate")
    return problems


def _check_template(settings: RunSettings, problems: Sequence[Problem]) -> None:
    """Fail before loading the model on a template that is missing or does not render."""
    from mmreason.data.prompts import TemplateError, render_prompt

    try:
        render_prompt(problems[0], settings.template)
    except TemplateError as err:
        raise RunError(str(err)) from err


def _load_model(settings: RunSettings) -> tuple[Any, Any]:
    from mmreason.config import ModelConfig
    from mmreason.distributed import device
    from mmreason.models import CheckpointError, load_policy

    cfg = ModelConfig(path=settings.model, dtype=settings.dtype, min_pixels=settings.min_pixels,
                      max_pixels=settings.max_pixels)
    try:
        model, processor = load_policy(cfg, device=device())
    except CheckpointError as err:
        raise RunError(str(err)) from err
    model.eval()
    return model, processor


def run_evaluation(settings: RunSettings, out_dir: str | Path) -> dict[str, Any] | None:
    """Generate, merge and score; returns the report on rank 0 (None on other ranks)."""
    import torch

    out = Path(out_dir)
    started = time.perf_counter()
    rank, world_size = distributed_context()
    out.mkdir(parents=True, exist_ok=True)
    _start_barrier(out, rank, world_size)
    problems = load_problems(settings)
    _check_template(settings, problems)
    model, processor = _load_model(settings)
    torch.manual_seed(settings.seed + rank)
    from mmreason.engines import sampling_engine

    engine = sampling_engine(settings.engine, model_path=settings.model, processor=processor, model=model,
                             seed=settings.seed + rank)
    try:
        lines = generate_predictions(model, processor, rank_share(problems, rank, world_size), settings,
                                     progress=rank == 0, engine=engine)
    finally:
        if engine is not None:
            engine.close()
    if world_size > 1:
        write_rank_file(out, rank, lines)
        if rank != 0:
            return None
        paths = [rank_file(out, r) for r in range(world_size)]
        wait_for_files(paths)
        lines = merge_rank_files(out, problems, world_size, settings.samples)
        for path in paths:
            path.unlink()
    predictions = write_predictions(out / "predictions.jsonl", lines)
    _, report = score_file(problems, predictions, out)
    generation = {
        **dataclasses.asdict(settings),
        "num_problems": len(problems),
        "world_size": world_size,
        "response_length": mean_response_length(lines),
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
    (out / "generation.json").write_text(json.dumps(generation, indent=2) + "\n", encoding="utf-8")
    return report
