"""Typed config of the k1.5 prompt-set curation (`data_prep/curate.py`).

Kimi k1.5 (section 2.2, "RL prompt set curation") asks three things of an RL
prompt set: diverse coverage, balanced difficulty and accurate evaluability.
Each step below serves one of them and can be switched off on its own:

    dedup -> decontam -> tagging -> evaluability -> hackable -> blind -> difficulty -> balance

The cheap text/image steps run first so the model steps generate only for
problems that survived them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from omegaconf import MISSING

from mmreason.config import ConfigError, ModelConfig, check_engine, register_validator
from mmreason.data.prompts import TemplateError, template_path

DIFFICULTY_BUCKETS = ("easy", "medium", "hard", "unknown")
MODEL_STEPS = ("hackable", "blind", "difficulty")
"""The steps that sample from cfg.model."""


class CurationError(ValueError):
    """Input the curation cannot run on (shards, eval sets, taxonomy); the message names the file or key."""


@dataclass
class DedupConfig:
    enabled: bool = True
    """Remove exact and near-duplicate problems (same text, perceptually equal images), keeping the first."""
    hash_size: int = 16
    """Side of the perceptual-hash grid (imagehash.phash): the hash has hash_size**2 bits."""
    max_distance: int = 24
    """Largest Hamming distance between two images' hashes that still counts as the same image."""
    require_same_answer: bool = True
    """Also require equal normalised answers: hashes cannot see a changed digit, answers can (see signatures.py)."""
    skew_min_problems: int = 20
    """Answer-skew warning: (question, answer) classes with at least this many input problems are checked."""
    skew_kept_ratio: float = 0.5
    """Warn (log and report, nothing more is removed) when dedup and decontamination keep less of a checked
    (question, answer) class than this times the share they keep of the whole input. Drawings that differ only
    in what the perceptual hash cannot see (a shorter bar, a corner more) collapse into one problem, and the
    cleaned set then teaches a skewed answer prior: dedup once kept 2 of 159 two-bar charts beside 139 of 161
    four-bar ones. 0 turns the warning off."""


@dataclass
class DecontamConfig:
    enabled: bool = True
    """Remove problems that match a problem of an evaluation set (the dedup signature)."""
    hash_size: int = 16
    """Perceptual-hash grid side used for both sides of the comparison."""
    max_distance: int = 24
    """Largest Hamming distance that counts as the same image (JPEG q90 / 1 px resize copies measured <= 18 bits)."""
    require_same_answer: bool = True
    """Also require equal normalised answers; eval records without an answer (MathVista test) match any answer."""


@dataclass
class TaggingConfig:
    enabled: bool = True
    """Write meta["domain"] and meta["subject"] from a keyword taxonomy of the question text."""
    taxonomy_path: Optional[str] = None
    """YAML file {domain: {subject: [keywords]}} replacing the built-in taxonomy; None uses the built-in one."""
    override_existing: bool = False
    """Re-tag problems that already carry a domain (meta domain, or synthetic meta family)."""
    fallback_domain: str = "other"
    """Domain (and subject) given to a question that matches no keyword."""


@dataclass
class EvaluabilityConfig:
    enabled: bool = True
    """Drop problems whose answers a rule-based verifier cannot check reliably (k1.5: accurate evaluability)."""
    drop_multiple_choice: bool = True
    """Drop multi_choice problems and free-form questions that list lettered options in their text (guessable)."""
    drop_true_false: bool = True
    """Drop true/false problems: meta kind true_false, a yes/no/true/false answer or choices (50% guessable)."""
    drop_proofs: bool = True
    """Drop proof-style questions whose answer is an argument, not a value."""
    proof_patterns: list[str] = field(
        default_factory=lambda: [
            r"\bprove\b", r"\bshow that\b", r"\bexplain why\b", r"\bjustify\b", r"\bdemonstrate that\b"
        ]
    )
    """Regular expressions (case-insensitive) that mark a proof-style question."""
    check_answer_parses: bool = True
    """Drop problems whose ground truth the verifier cannot parse (mmreason.rewards.check_ground_truth)."""


@dataclass
class GenerationConfig:
    problems_per_batch: int = 64
    """Problems handed to one generate call per rank; the cache is flushed after each such batch."""
    batch_size: int = 64
    """Sequences in flight per `generate` call: batch_size // samples-per-prompt prompts at a time (at least 1)."""
    top_p: float = 1.0
    """Nucleus sampling threshold for both model steps."""
    engine: str = "hf"
    """Generation engine of the model steps: hf (transformers generate) or vllm (a vLLM engine per rank; docs/engines.md)."""
    dist_timeout_minutes: int = 1440
    """torch.distributed timeout: ranks wait at the barrier for the slowest one, which can take hours."""


@dataclass
class HackableConfig:
    enabled: bool = True
    """k1.5 easy-to-hack filter: drop a problem when the model answers it right without any chain of thought."""
    template: str = "answer_only"
    """Prompt template asking for the final answer only in \\boxed{} (configs/prompts/<name>.jinja or a path)."""
    num_tries: int = 8
    """Answer-only attempts per problem (k1.5 uses k = 8); any correct one drops the problem."""
    temperature: float = 1.0
    """Sampling temperature of the attempts."""
    max_new_tokens: int = 64
    """A final answer alone needs few tokens."""
    response_prefix: str = ""
    """Text pre-filled in the assistant turn; "<think>\\n</think>\\n" stops a model trained to think from thinking."""


@dataclass
class BlindConfig:
    enabled: bool = False
    """Drop a problem when the model answers it right with its images blanked (guessable without looking).
    Off by default: k1.5 has no such step, and it costs num_tries chains of thought per problem."""
    template: str = "r1_boxed"
    """Prompt template of the blind tries (configs/prompts/<name>.jinja or a path): the model's usual one."""
    num_tries: int = 4
    """Blind attempts per problem; any correct one drops the problem."""
    temperature: float = 1.0
    """Sampling temperature of the attempts."""
    max_new_tokens: int = 1024
    """Longest chain of thought of a blind try (match difficulty.max_new_tokens)."""


@dataclass
class DifficultyConfig:
    enabled: bool = True
    """Model-based difficulty (k1.5): sample answers with chain of thought and store meta["pass_rate"]."""
    template: str = "r1_boxed"
    """Chain-of-thought prompt template (configs/prompts/<name>.jinja or a path)."""
    num_samples: int = 10
    """Answers sampled per problem; pass rate = correct / num_samples (k1.5 samples 10)."""
    temperature: float = 1.0
    """A high temperature spreads the samples, so the pass rate measures difficulty rather than one greedy path."""
    max_new_tokens: int = 1024
    """Longest sampled chain of thought in tokens (match the RL rollout's, so the pass rate is the one RL will see)."""
    drop_solved: bool = True
    """Drop problems every sample solves (nothing left to learn; zero advantage in GRPO)."""
    drop_unsolved: bool = False
    """Also drop problems no sample solves (no learning signal for this model; they may be mislabeled)."""


@dataclass
class BalanceConfig:
    enabled: bool = True
    """Sample a prompt set of `total` problems matching a target mix over (domain, difficulty bucket) cells."""
    total: int = 0
    """Problems in the curated set (required when enabled; fewer when not enough survive)."""
    domain_weights: dict[str, float] = field(default_factory=dict)
    """Relative weight per domain; domains not listed get default_domain_weight (empty: uniform)."""
    default_domain_weight: float = 1.0
    """Weight of a domain absent from domain_weights (0 drops such domains)."""
    difficulty_weights: dict[str, float] = field(
        default_factory=lambda: {"easy": 1.0, "medium": 1.0, "hard": 1.0, "unknown": 1.0}
    )
    """Relative weight per difficulty bucket: easy / medium / hard / unknown (unlisted buckets get 0)."""
    easy_min_pass_rate: float = 0.7
    """A pass rate at or above this is `easy`."""
    hard_max_pass_rate: float = 0.3
    """A pass rate at or below this is `hard`; between the two is `medium`."""
    seed: int = 0
    """Seed of the sampling without replacement inside each cell."""
    presample: int = 0
    """> 0: before the model steps, keep this many problems by the same mix (difficulty from meta labels), so the
    costly sampling only sees them; 0 (k1.5) scores every survivor. Must be >= total, and a model step must be on."""


@dataclass
class CurateConfig:
    input: str = MISSING
    """Input shards: a directory, a brace pattern or comma-separated tar paths."""
    output: str = MISSING
    """Output directory: shards, report.json, report.md, removed.jsonl, plots, cache/."""
    eval_sets: list[str] = field(default_factory=list)
    """Evaluation sets to decontaminate against: MathVista parquet/jsonl files or shard directories."""
    shard_size: int = 1000
    """Problems per output shard."""
    model: ModelConfig = field(default_factory=lambda: ModelConfig(path=""))
    """Model of the hackable, blind and difficulty steps (path required only when one of them is enabled)."""
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    tagging: TaggingConfig = field(default_factory=TaggingConfig)
    evaluability: EvaluabilityConfig = field(default_factory=EvaluabilityConfig)
    hackable: HackableConfig = field(default_factory=HackableConfig)
    blind: BlindConfig = field(default_factory=BlindConfig)
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)


def validate_curate(cfg: CurateConfig) -> CurateConfig:
    """Cross-field rules, checked before any work; raises ConfigError naming the key."""

    def fail(key: str, what: str) -> None:
        raise ConfigError(f"config key {key!r}: {what}")

    if cfg.shard_size <= 0:
        fail("shard_size", f"must be > 0, got {cfg.shard_size}")
    for name in ("dedup", "decontam"):
        section = getattr(cfg, name)
        if section.hash_size < 2:
            fail(f"{name}.hash_size", f"must be >= 2, got {section.hash_size}")
        bits = section.hash_size**2
        if not 0 <= section.max_distance < bits:
            fail(f"{name}.max_distance", f"must be in [0, {bits}) for a {bits}-bit hash, got {section.max_distance}")
    if cfg.dedup.skew_min_problems < 1:
        fail("dedup.skew_min_problems", f"must be >= 1, got {cfg.dedup.skew_min_problems}")
    if not 0 <= cfg.dedup.skew_kept_ratio <= 1:
        fail("dedup.skew_kept_ratio", f"must be in [0, 1], got {cfg.dedup.skew_kept_ratio}")
    if cfg.decontam.enabled:
        for i, path in enumerate(cfg.eval_sets):
            if not Path(path).exists():
                fail(f"eval_sets[{i}]", f"{path!r} does not exist")
    if cfg.tagging.taxonomy_path is not None and not Path(cfg.tagging.taxonomy_path).is_file():
        fail("tagging.taxonomy_path", f"file {cfg.tagging.taxonomy_path!r} does not exist")
    for i, pattern in enumerate(cfg.evaluability.proof_patterns):
        try:
            re.compile(pattern)
        except re.error as err:
            fail(f"evaluability.proof_patterns[{i}]", f"{pattern!r} is not a regular expression ({err})")
    for name in MODEL_STEPS:
        section = getattr(cfg, name)
        if section.enabled:
            try:
                template_path(section.template)
            except TemplateError as err:
                fail(f"{name}.template", str(err))
    model_steps = [name for name in MODEL_STEPS if getattr(cfg, name).enabled]
    check_engine("generation.engine", cfg.generation.engine)
    if model_steps and not cfg.model.path:
        fail("model.path", f"must be set: the {' and '.join(model_steps)} step(s) are enabled")
    gen = cfg.generation
    samples_per_problem = {
        "hackable.num_tries": cfg.hackable.num_tries,
        "blind.num_tries": cfg.blind.num_tries,
        "difficulty.num_samples": cfg.difficulty.num_samples,
    }
    for key, value in {
        "generation.problems_per_batch": gen.problems_per_batch,
        "generation.batch_size": gen.batch_size,
        "generation.dist_timeout_minutes": gen.dist_timeout_minutes,
        **samples_per_problem,
        **{f"{name}.max_new_tokens": getattr(cfg, name).max_new_tokens for name in MODEL_STEPS},
    }.items():
        if value <= 0:
            fail(key, f"must be > 0, got {value}")
    if not 0 < gen.top_p <= 1:
        fail("generation.top_p", f"must be in (0, 1], got {gen.top_p}")
    for key, count in samples_per_problem.items():
        name = key.split(".")[0]
        temperature = getattr(cfg, name).temperature
        if temperature < 0:
            fail(f"{name}.temperature", f"must be >= 0, got {temperature}")
        if temperature == 0 and count > 1:
            fail(f"{name}.temperature", f"0 is greedy decoding: the {count} samples would all be the same")
    balance = cfg.balance
    if balance.enabled and balance.total <= 0:
        fail("balance.total", f"must be > 0 when balance is enabled, got {balance.total}")
    if balance.presample < 0:
        fail("balance.presample", f"must be >= 0, got {balance.presample}")
    if balance.presample and not model_steps:
        fail("balance.presample", f"{balance.presample} caps what the model steps see, but none of "
             f"{list(MODEL_STEPS)} is enabled: set it to 0 (balance.total caps the output)")
    if balance.presample and balance.enabled and balance.presample < balance.total:
        fail("balance.presample", f"{balance.presample} < balance.total ({balance.total}): too few to reach total")
    for domain, weight in balance.domain_weights.items():
        if weight < 0:
            fail(f"balance.domain_weights.{domain}", f"must be >= 0, got {weight}")
    if balance.default_domain_weight < 0:
        fail("balance.default_domain_weight", f"must be >= 0, got {balance.default_domain_weight}")
    for bucket, weight in balance.difficulty_weights.items():
        if bucket not in DIFFICULTY_BUCKETS:
            fail(f"balance.difficulty_weights.{bucket}", f"unknown bucket; expected some of {list(DIFFICULTY_BUCKETS)}")
        if weight < 0:
            fail(f"balance.difficulty_weights.{bucket}", f"must be >= 0, got {weight}")
    if not 0 <= balance.hard_max_pass_rate < balance.easy_min_pass_rate <= 1:
        fail(
            "balance.easy_min_pass_rate",
            f"need 0 <= hard_max_pass_rate ({balance.hard_max_pass_rate}) < easy_min_pass_rate "
            f"({balance.easy_min_pass_rate}) <= 1",
        )
    return cfg


register_validator(CurateConfig, validate_curate)
