"""Algorithm presets: `algo.name` fills the keys of `AlgoConfig` (and DAPO's overlong default in `RewardConfig`)
that the user left unset (None). An explicitly set key always wins.

==========  ============  ==============  =======================  ==========  ================  ========
preset      advantage     loss            loss_agg                 clip_high   dynamic_sampling  overlong
==========  ============  ==============  =======================  ==========  ================  ========
grpo        group_norm    ppo_clip        seq_mean_token_mean      0.2         off               off
dapo        group_norm    ppo_clip        token_mean               0.28        on                1/5 of L
dr_grpo     group_center  ppo_clip        seq_mean_token_sum_norm  0.2         off               off
k15         group_center  mirror_descent  (none: per sequence)     0.2         off               off
==========  ============  ==============  =======================  ==========  ================  ========

The reference policy follows from the rest: k15 compares against a snapshot taken every
`reference_refresh_every` steps (or, when that is 1, the policy that sampled the step); the others load a
frozen copy of the starting policy only when `beta > 0`.

To add an algorithm: register its advantage estimator in `advantages.py` and/or its loss in `losses.py`,
then add a row here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from mmreason.config import AlgoConfig


@dataclass(frozen=True)
class AlgoPreset:
    advantage: str
    loss: str
    loss_agg: Optional[str]
    clip_eps_high: float
    dynamic_sampling: bool
    overlong_buffer_fraction: float
    """DAPO's soft overlong buffer as a share of max_new_tokens (DAPO: 4,096 of 20,480 tokens)."""


REFERENCE_KINDS = ("none", "frozen", "snapshot", "rollout")
"""The reference policies mmreason/rl/reference.py knows (algo.reference)."""

REFERENCE_PLACEMENTS = ("replicated", "partitioned", "offloaded")
"""Where a reference model lives (algo.reference_placement; mmreason/rl/reference.py)."""

PRESETS: dict[str, AlgoPreset] = {
    "grpo": AlgoPreset("group_norm", "ppo_clip", "seq_mean_token_mean", 0.2, False, 0.0),
    "dapo": AlgoPreset("group_norm", "ppo_clip", "token_mean", 0.28, True, 0.2),
    "dr_grpo": AlgoPreset("group_center", "ppo_clip", "seq_mean_token_sum_norm", 0.2, False, 0.0),
    "k15": AlgoPreset("group_center", "mirror_descent", None, 0.2, False, 0.0),
}


def lookup(registry: dict[str, Any], name: Optional[str], key: str) -> Any:
    """registry[name]; a ValueError names the config key and lists the valid choices on a typo."""
    if name not in registry:
        raise ValueError(f"{key} {name!r} is unknown; valid choices: {sorted(registry)}")
    return registry[name]


def preset(name: str) -> AlgoPreset:
    """The preset called `name`; a ValueError lists the valid names on a typo."""
    found = PRESETS.get(name)
    if found is None:
        raise ValueError(f"algo.name {name!r} is not an algorithm preset; valid names: {sorted(PRESETS)}")
    return found


def default_reference(name: str, beta: float, reference_refresh_every: int) -> str:
    if name == "k15":
        return "snapshot" if reference_refresh_every > 1 else "rollout"
    return "frozen" if beta > 0 else "none"


def resolve_algo(cfg: AlgoConfig) -> AlgoConfig:
    """A copy of `cfg` with every unset (None) key filled from the preset `cfg.name`. Idempotent."""
    chosen = preset(cfg.name)
    loss = cfg.loss if cfg.loss is not None else chosen.loss
    # The preset's aggregation belongs to its own loss: an explicit ppo_clip under k15 gets the GRPO default.
    preset_agg = chosen.loss_agg if loss == chosen.loss else PRESETS["grpo"].loss_agg
    return dataclasses.replace(
        cfg,
        advantage=cfg.advantage if cfg.advantage is not None else chosen.advantage,
        loss=loss,
        loss_agg=cfg.loss_agg if cfg.loss_agg is not None else (preset_agg if loss == "ppo_clip" else None),
        reference=cfg.reference if cfg.reference is not None
        else default_reference(cfg.name, cfg.beta, cfg.reference_refresh_every),
        clip_eps_high=cfg.clip_eps_high if cfg.clip_eps_high is not None else chosen.clip_eps_high,
        dynamic_sampling=cfg.dynamic_sampling if cfg.dynamic_sampling is not None else chosen.dynamic_sampling,
    )


def default_overlong_buffer(name: str, max_new_tokens: int) -> int:
    """The preset's DAPO overlong buffer in tokens for responses of at most `max_new_tokens`."""
    return int(preset(name).overlong_buffer_fraction * max_new_tokens)
