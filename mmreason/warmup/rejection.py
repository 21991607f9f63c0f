"""The `rejection` warmup source: sample k replies per problem from a teacher, keep the verified ones.

DeepSeek-R1's cold start (and its distilled small models) and Kimi k1.5's
warmup fine-tune on replies of a stronger model that were checked. Here a
reply is *accepted* when the reward gives it format 1 (`<think>...</think>`
then exactly one box) and accuracy 1 (the boxed answer verifies against the
ground truth). `keep: shortest` keeps one accepted reply per problem, the
shortest in tokens; `keep: all` keeps every accepted reply.

Work is split over ranks (`deepspeed --num_gpus N data_prep/build_warmup.py ...`):
rank r samples the problems i with i % world_size == r and appends one JSON
line per problem to `<output>/rejection_parts/rank<r>.jsonl` after every
generate call::

    {"pid": ..., "fingerprint": ..., "traces": [{"text", "num_tokens", "accuracy", "format", "reason"}, ...]}

After all ranks finish, rank 0 reads every part file. The fingerprint names
the teacher and sampling settings: a restarted run skips problems that already
have a line with the same fingerprint in any part file (so a killed run loses
at most one generate call per rank), and changed settings resample.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from mmreason.config import RewardConfig
from mmreason.problem import Problem
from mmreason.rewards import score
from mmreason.warmup.config import KEEP_MODES, RejectionConfig, WarmupError
from mmreason.jsonl import open_for_append

if TYPE_CHECKING:  # generation imports torch; the template-only path never needs it
    from mmreason.generation import SampledText

log = logging.getLogger(__name__)

PARTS_DIR = "rejection_parts"

_JUDGE = RewardConfig()
"""The reward's own defaults: a kept reply earns accuracy 1 and format 1 exactly as RL will score it."""


@dataclass(frozen=True)
class Trace:
    """One sampled reply and how the reward judged it."""

    text: str
    num_tokens: int
    """Length of the reply in teacher tokens (what `keep: shortest` compares)."""
    accuracy: float
    format: float
    reason: str
    """The reward's reason: correct, or why the answer did not verify (no_answer, wrong, ...)."""

    @property
    def accepted(self) -> bool:
        return self.accuracy == 1.0 and self.format == 1.0


def judge_trace(text: str, problem: Problem, num_tokens: int) -> Trace:
    scores = score(text, problem, _JUDGE)
    return Trace(text, num_tokens, scores.accuracy, scores.format, scores.reason)


def select_traces(traces: Sequence[Trace], keep: str) -> list[int]:
    """Indices of the traces to keep: every accepted one (all) or the shortest accepted one (shortest).

    Ties in length go to the earlier sample, so the choice is deterministic.
    """
    if keep not in KEEP_MODES:
        raise ValueError(f"rejection.keep: {keep!r} is not a mode; expected one of {list(KEEP_MODES)}")
    accepted = [i for i, trace in enumerate(traces) if trace.accepted]
    if keep == "all" or not accepted:
        return accepted
    return [min(accepted, key=lambda i: (traces[i].num_tokens, i))]


def rejection_records(problem: Problem, traces: Sequence[Trace], keep: str, teacher: str) -> list[Problem]:
    """The warmup records of one problem: a copy per kept trace, its text as the solution to learn."""
    records = []
    for index in select_traces(traces, keep):
        meta = dict(problem.meta, warmup_source="rejection", warmup_of=problem.pid, teacher=teacher,
                    trace_index=index, trace_tokens=traces[index].num_tokens)
        records.append(problem.copy(pid=f"{problem.pid}-rej{index}", solution=traces[index].text, meta=meta))
    return records


# ---------------------------------------------------------------- the teacher


def load_teacher(cfg: RejectionConfig, local_rank: int = 0) -> tuple[Any, Any]:
    """(model, processor) of the teacher: on this rank's device, or spread over all GPUs (device_map auto)."""
    import torch

    from mmreason.models import load_policy, load_processor, resolve_attn_implementation, resolve_dtype

    if cfg.device_map is None:
        device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
        return load_policy(cfg.model, device=device)
    # load_policy moves the whole model to one device; a 72B teacher (about 145 GB in bf16) needs its
    # layers spread over several GPUs, which transformers does with accelerate's device map.
    from transformers import AutoModelForImageTextToText

    try:
        model = AutoModelForImageTextToText.from_pretrained(
            cfg.model.path,
            dtype=resolve_dtype(cfg.model.dtype),
            attn_implementation=resolve_attn_implementation(cfg.model.attn_implementation),
            device_map=cfg.device_map,
        )
    except (OSError, ValueError, ImportError) as err:
        raise WarmupError(f"config key 'rejection.model.path' ({cfg.model.path!r}): cannot load with device_map "
                          f"{cfg.device_map!r} ({err})") from err
    return model, load_processor(cfg.model.path, cfg.model)


class Teacher:
    """Samples `num_samples` replies per problem through the engine `cfg.engine` names; the model (and engine) are
    loaded on first use, not at all on a full resume. `close()` releases the engine."""

    def __init__(self, cfg: RejectionConfig, local_rank: int = 0, seed: int = 0):
        self.cfg = cfg
        self.local_rank = local_rank
        self.seed = seed
        self._loaded: tuple[Any, Any] | None = None
        self._engine: Any = None

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from mmreason.models import CheckpointError

            log.info("rejection: loading teacher %s (%s engine)", self.cfg.model.path, self.cfg.engine)
            try:
                self._loaded = load_teacher(self.cfg, self.local_rank)
            except CheckpointError as err:
                raise WarmupError(f"config key 'rejection.model.path': {err}") from err
            from mmreason.engines import sampling_engine

            model, processor = self._loaded
            self._engine = sampling_engine(self.cfg.engine, model_path=self.cfg.model.path, processor=processor,
                                           model=model, seed=self.seed)
        return self._loaded

    def sample(self, problems: Sequence[Problem]) -> list[list[SampledText]]:
        """`num_samples` SampledText (text, generated token count) per problem."""
        from mmreason.generation import generate_samples

        model, processor = self._load()
        cfg = self.cfg
        return generate_samples(
            model, processor, list(problems),
            template=cfg.prompt_template,
            num_samples=cfg.num_samples,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=prompts_per_call(cfg),
            system_prompt=cfg.system_prompt,
            engine=self._engine,
        )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def prompts_per_call(cfg: RejectionConfig) -> int:
    """rejection.batch_size counts sequences; each prompt brings num_samples of them."""
    return max(1, cfg.batch_size // cfg.num_samples)


def settings_fingerprint(cfg: RejectionConfig, seed: int) -> str:
    """Short digest of everything that decides what a sampled reply means (teacher, prompt, decoding)."""
    m = cfg.model
    parts = [m.path, m.dtype, m.min_pixels, m.max_pixels, cfg.prompt_template, cfg.system_prompt,
             cfg.num_samples, cfg.temperature, cfg.top_p, cfg.max_new_tokens, seed]
    return hashlib.sha1(json.dumps(parts, default=str).encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------- part files


def part_path(parts_dir: Path, rank: int) -> Path:
    return parts_dir / f"rank{rank}.jsonl"


def read_parts(parts_dir: Path, key: str) -> dict[str, list[Trace]]:
    """pid -> traces from every rank's part file, only lines with fingerprint `key`.

    Lines of other settings are skipped, and so is a torn last line left by a killed run.
    """
    results: dict[str, list[Trace]] = {}
    stale = 0
    for path in sorted(parts_dir.glob("rank*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    pid, line_key = record["pid"], record["fingerprint"]
                    traces = [Trace(**trace) for trace in record["traces"]]
                except (ValueError, KeyError, TypeError):
                    log.warning("%s line %d: unreadable line ignored (interrupted write?)", path, number)
                    continue
                if line_key != key:
                    stale += 1
                    continue
                results[pid] = traces
    if stale:
        log.info("rejection: %d part lines from other settings ignored", stale)
    return results


def _chunks(items: Sequence[Problem], size: int) -> Iterator[Sequence[Problem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sample_share(
    problems: Sequence[Problem],
    teacher: Teacher,
    cfg: RejectionConfig,
    *,
    parts_dir: Path,
    rank: int,
    world_size: int,
    key: str,
) -> int:
    """Sample and judge this rank's share of `problems` not yet in any part file; returns how many it sampled."""
    parts_dir.mkdir(parents=True, exist_ok=True)
    done = read_parts(parts_dir, key)
    mine = [p for i, p in enumerate(problems) if i % world_size == rank]
    todo = [p for p in mine if p.pid not in done]
    log.info("rejection rank %d: %d of its %d problems already sampled, %d to go", rank, len(mine) - len(todo),
             len(mine), len(todo))
    if not todo:
        return 0
    accepted = sampled = 0
    with open_for_append(part_path(parts_dir, rank)) as part:
        for chunk in _chunks(todo, prompts_per_call(cfg)):
            replies = teacher.sample(chunk)
            if len(replies) != len(chunk):
                raise RuntimeError(f"rejection: the teacher returned {len(replies)} reply lists "
                                   f"for {len(chunk)} problems")
            for problem, samples in zip(chunk, replies):
                traces = [judge_trace(sample.text, problem, sample.num_tokens) for sample in samples]
                accepted += sum(trace.accepted for trace in traces)
                line = {"pid": problem.pid, "fingerprint": key, "traces": [asdict(trace) for trace in traces]}
                part.write(json.dumps(line, ensure_ascii=False) + "\n")
            part.flush()
            os.fsync(part.fileno())
            sampled += len(chunk)
            log.info("rejection rank %d: %d/%d problems sampled, %d replies accepted so far", rank, sampled,
                     len(todo), accepted)
    return sampled


__all__ = [
    "PARTS_DIR",
    "Trace",
    "Teacher",
    "judge_trace",
    "select_traces",
    "rejection_records",
    "load_teacher",
    "prompts_per_call",
    "settings_fingerprint",
    "part_path",
    "read_parts",
    "sample_share",
]
