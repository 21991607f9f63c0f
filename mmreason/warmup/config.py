"""Typed config of the long-CoT warmup data builder (`data_prep/build_warmup.py`).

Kimi k1.5 warms its model up with a small set of long chain-of-thought traces
that are *accurately verified*; DeepSeek-R1's cold start does the same with
traces from a stronger model. Two sources produce such traces here:

    template   render a problem's reference solution (Plan / Step / Check / Conclude)
               as a <think>...</think> reply, optionally with a slip and its correction
    rejection  sample k replies per problem from a teacher checkpoint and keep
               only replies whose answer verifies and whose format is right

Every kept reply passes `format_reward == 1` and reward accuracy `== 1`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from mmreason.config import ConfigError, ModelConfig, check_engine, register_validator

SOURCES = ("template", "rejection")
KEEP_MODES = ("shortest", "all")
CHOICE_ANSWERS = ("text", "letter")


class WarmupError(ValueError):
    """Input the warmup builder cannot run on (shards, ranks); the message names the file or key."""


@dataclass
class TemplateConfig:
    reflection_prob: float = 0.0
    """Chance (seeded per pid) that one numeric step gets a slip followed by "Wait, that is wrong: ..." (k1.5 reflection)."""
    recheck_max: int = 0
    """Extra "Check: once more, ..." lines after the reference's checks: each reply gets between 0 and this many
    (uniform, seeded per pid), so replies vary in length the way long-CoT replies do (the long2short bench's long
    model learns from them; 0 = none)."""
    choice_answer: str = "text"
    """What a multiple-choice reply boxes: text (the option's text, as the reference concludes) or letter (A, B, ...)."""


@dataclass
class RejectionConfig:
    model: ModelConfig = field(default_factory=lambda: ModelConfig(path=""))
    """Teacher checkpoint (directory or hub id); required when `rejection` is among the sources."""
    engine: str = "hf"
    """Generation engine: hf (transformers generate) or vllm (a vLLM engine per rank; docs/engines.md)."""
    device_map: Optional[str] = None
    """None: the whole teacher on this rank's device (one rank per GPU). auto: spread it over all visible GPUs in one process (a 72B teacher needs this; requires `accelerate`)."""
    prompt_template: str = "r1_boxed"
    """Prompt template (configs/prompts/<name>.jinja or a path); it must ask for <think> and \\boxed{}."""
    system_prompt: Optional[str] = None
    """Optional system message before the user turn."""
    num_samples: int = 8
    """Replies sampled per problem (k)."""
    temperature: float = 1.0
    """Sampling temperature (0 = greedy, only sensible with num_samples 1)."""
    top_p: float = 1.0
    """Nucleus sampling threshold."""
    max_new_tokens: int = 4096
    """Longest reply in tokens; a reply cut here has no closed </think> and fails the format check."""
    batch_size: int = 64
    """Sequences per generate call (prompts per call = batch_size // num_samples); results are flushed after each."""
    keep: str = "shortest"
    """shortest: one reply per problem, the shortest accepted one in tokens (k1.5); all: every accepted reply."""
    dist_timeout_minutes: int = 1440
    """How long ranks wait for the slowest one before rank 0 merges (a large teacher can take hours)."""


@dataclass
class WarmupConfig:
    input: str = MISSING
    """Problem shards: a directory, a brace pattern or comma-separated tar paths."""
    output: str = MISSING
    """Output directory: shards, report.json, report.md, config.yaml, rejection_parts/."""
    sources: list[str] = field(default_factory=lambda: ["template"])
    """Where replies come from: template and/or rejection (a problem may get a record from each)."""
    shard_size: int = 1000
    """Records per output shard."""
    seed: int = 0
    """Seed of the reflection draws and of the teacher's sampling."""
    limit: int = 0
    """Use only the first `limit` input problems (0 = all); counted after `family_limits`."""
    family_limits: dict[str, int] = field(default_factory=dict)
    """family -> the most problems of that family to trace (meta["family"]); families not listed are not capped
    and 0 traces none. A warmup that traces a family lightly leaves it to RL, which learns it from answers alone."""
    template: TemplateConfig = field(default_factory=TemplateConfig)
    rejection: RejectionConfig = field(default_factory=RejectionConfig)


def validate_warmup(cfg: WarmupConfig) -> WarmupConfig:
    """Cross-field rules, checked before any work; raises ConfigError naming the key."""

    def fail(key: str, what: str) -> None:
        raise ConfigError(f"config key {key!r}: {what}")

    if not cfg.sources:
        fail("sources", f"is empty; expected some of {list(SOURCES)}")
    for i, source in enumerate(cfg.sources):
        if source not in SOURCES:
            fail(f"sources[{i}]", f"{source!r} is not a source; expected some of {list(SOURCES)}")
    if len(set(cfg.sources)) != len(cfg.sources):
        fail("sources", f"{cfg.sources} names a source twice")
    if cfg.shard_size <= 0:
        fail("shard_size", f"must be > 0, got {cfg.shard_size}")
    if cfg.limit < 0:
        fail("limit", f"must be >= 0 (0 = all problems), got {cfg.limit}")
    for family, cap in cfg.family_limits.items():
        if cap < 0:
            fail(f"family_limits.{family}", f"must be >= 0 (0 = trace none of this family), got {cap}")
    if not 0.0 <= cfg.template.reflection_prob <= 1.0:
        fail("template.reflection_prob", f"must be in [0, 1], got {cfg.template.reflection_prob}")
    if cfg.template.recheck_max < 0:
        fail("template.recheck_max", f"must be >= 0, got {cfg.template.recheck_max}")
    if cfg.template.choice_answer not in CHOICE_ANSWERS:
        fail("template.choice_answer", f"{cfg.template.choice_answer!r}; expected one of {list(CHOICE_ANSWERS)}")
    rej = cfg.rejection
    if rej.keep not in KEEP_MODES:
        fail("rejection.keep", f"{rej.keep!r}; expected one of {list(KEEP_MODES)}")
    if rej.device_map not in (None, "auto"):
        fail("rejection.device_map", f"{rej.device_map!r}; expected null or auto")
    check_engine("rejection.engine", rej.engine)
    if rej.engine == "vllm" and rej.device_map is not None:
        fail("rejection.engine", "vllm places the teacher itself; rejection.device_map must stay null")
    for key, value in {
        "rejection.num_samples": rej.num_samples,
        "rejection.max_new_tokens": rej.max_new_tokens,
        "rejection.batch_size": rej.batch_size,
        "rejection.dist_timeout_minutes": rej.dist_timeout_minutes,
    }.items():
        if value <= 0:
            fail(key, f"must be > 0, got {value}")
    if not 0 < rej.top_p <= 1:
        fail("rejection.top_p", f"must be in (0, 1], got {rej.top_p}")
    if rej.temperature < 0:
        fail("rejection.temperature", f"must be >= 0, got {rej.temperature}")
    if rej.temperature == 0 and rej.num_samples > 1:
        fail("rejection.temperature", f"0 is greedy decoding: the {rej.num_samples} samples would all be the same")
    if "rejection" in cfg.sources:
        if not rej.model.path:
            fail("rejection.model.path", "must be set: the rejection source samples from this teacher")
        from mmreason.data.prompts import TemplateError, template_path

        try:
            template_path(rej.prompt_template)
        except TemplateError as err:
            fail("rejection.prompt_template", str(err))
    return cfg


register_validator(WarmupConfig, validate_warmup)
