"""Typed config of the long2short data builder (`data_prep/build_long2short.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from mmreason.config import ConfigError, register_validator
from mmreason.warmup.config import RejectionConfig


def _sampling_default() -> RejectionConfig:
    return RejectionConfig(num_samples=8, temperature=1.0)


@dataclass
class Long2ShortConfig:
    input: str = MISSING
    """Problem shards (with ground truths): a directory, a brace pattern or comma-separated tar paths."""
    output: str = MISSING
    """Output directory: sft/ (shortest correct reply per problem), dpo/ (preference pairs), report.json,
    report.md, config.yaml, rejection_parts/ (every sampled reply, reused by a restarted run)."""
    sampling: RejectionConfig = field(default_factory=_sampling_default)
    """The long-CoT model to sample from (sampling.model.path), its prompt and decoding; num_samples is k1.5's n
    (8 in the paper). Replies are judged by the reward's verifier as the warmup rejection source judges them
    (its `keep` is not read here)."""
    length_ratio: float = 1.5
    """DPO negatives include correct replies longer than this times the shortest correct one (k1.5: 1.5)."""
    max_pairs_per_problem: int = 0
    """Keep at most this many DPO pairs per problem (the first negatives in sample order); 0 keeps all."""
    shard_size: int = 1000
    """Records per output shard."""
    seed: int = 0
    """Seed of the sampling (rank r uses seed + r)."""
    limit: int = 0
    """Use only the first `limit` input problems (0 = all)."""


def validate_long2short(cfg: Long2ShortConfig) -> Long2ShortConfig:
    """Cross-field rules, checked before any model is loaded; raises ConfigError naming the key."""

    def fail(key: str, what: str) -> None:
        raise ConfigError(f"config key {key!r}: {what}")

    if not cfg.sampling.model.path:
        fail("sampling.model.path", "must be set: the long-CoT model to sample from")
    if cfg.length_ratio < 1:
        fail("length_ratio", f"must be >= 1, got {cfg.length_ratio}")
    for key, value in (("max_pairs_per_problem", cfg.max_pairs_per_problem), ("limit", cfg.limit)):
        if value < 0:
            fail(key, f"must be >= 0, got {value}")
    if cfg.shard_size <= 0:
        fail("shard_size", f"must be > 0, got {cfg.shard_size}")
    s = cfg.sampling
    for key, value in (("sampling.num_samples", s.num_samples), ("sampling.max_new_tokens", s.max_new_tokens),
                       ("sampling.batch_size", s.batch_size)):
        if value <= 0:
            fail(key, f"must be > 0, got {value}")
    if s.temperature <= 0 and s.num_samples > 1:
        fail("sampling.temperature", f"must be > 0: the {s.num_samples} samples of a problem would all be the same")
    if not 0 < s.top_p <= 1:
        fail("sampling.top_p", f"must be in (0, 1], got {s.top_p}")
    return cfg


register_validator(Long2ShortConfig, validate_long2short)
