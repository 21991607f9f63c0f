"""The reference policy of the KL / mirror-descent term, decided in one place (`algo.reference`).

=========  ==========================================================  =========================================
kind       what pi_ref is                                              used by
=========  ==========================================================  =========================================
none       nothing (no KL term, no reference log-probs)                GRPO/DAPO/Dr. GRPO with beta = 0
frozen     a frozen copy of the starting policy, never updated         GRPO with beta > 0
snapshot   a frozen copy of the policy, refreshed at the start of      Kimi k1.5 with an iteration of several
           every iteration of `reference_refresh_every` steps          steps
rollout    the policy that sampled this step's rollout: its log-probs  Kimi k1.5 with one step per iteration
           are the old log-probs, no model of its own
=========  ==========================================================  =========================================

Kimi k1.5's iterations: a new one starts every `reference_refresh_every` steps for the snapshot and rollout kinds
(and the optimizer state may be reset then, `algo.reset_optimizer_each_iteration`).

Where a reference model lives (`algo.reference_placement`): `replicated`, a whole copy on every rank (fastest,
and the most memory: a 7B model in bf16 is 15 GB per GPU); `partitioned`, split across the ranks by ZeRO-3 and
gathered module by module in its forward; `offloaded`, partitioned and kept in CPU memory, streamed to the
device module by module. With LoRA (`model.lora`) a frozen reference is the policy itself with its adapters
disabled (the base model it started from), so there is no copy to place; a snapshot is still a copy.
"""

from __future__ import annotations

import copy
from typing import Callable, Optional

import torch

from mmreason.config import AlgoConfig
from mmreason.distributed import gathered
from mmreason.lora import AdaptersDisabled, is_lora
from mmreason.rl.presets import REFERENCE_KINDS, REFERENCE_PLACEMENTS, lookup, resolve_algo


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    reference = copy.deepcopy(model).eval()
    reference.requires_grad_(False)
    return reference


@torch.no_grad()
def copy_weights(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """target <- source, one module at a time. ZeRO-3 partitioned parameters (the policy's, or a partitioned
    reference's) are gathered module by module (a `state_dict` would hold empty placeholders) and a partitioned
    target is written back to its partitions; every rank must call this together."""
    target_params = dict(target.named_parameters(remove_duplicate=False))
    for module_name, module in source.named_modules():
        prefix = f"{module_name}." if module_name else ""
        own = list(module.named_parameters(recurse=False))
        targets = [target_params[prefix + name] for name, _ in own]
        with gathered([param for _, param in own]), gathered(targets, modify=True):
            for (_, param), destination in zip(own, targets):
                destination.copy_(param.data)
    target_buffers = dict(target.named_buffers())
    for name, buffer in source.named_buffers():
        target_buffers[name].copy_(buffer)


class ReferencePolicy:
    """Holds (or stands for) pi_ref and says when a k1.5 iteration starts.

    `model` is the policy's module at the start of training (deep-copied for frozen and snapshot kinds).
    """

    def __init__(self, cfg: AlgoConfig, model: torch.nn.Module):
        cfg = resolve_algo(cfg)
        lookup(dict.fromkeys(REFERENCE_KINDS), cfg.reference, "algo.reference")
        lookup(dict.fromkeys(REFERENCE_PLACEMENTS), cfg.reference_placement, "algo.reference_placement")
        self.kind: str = cfg.reference
        self.refresh_every = cfg.reference_refresh_every
        self.reset_optimizer_each_iteration = cfg.reset_optimizer_each_iteration
        self._model: Optional[torch.nn.Module] = None
        if self.kind == "frozen" and is_lora(model):
            # LoRA (model.lora): the starting policy is the base model, so pi_ref is the policy's own forward with
            # its adapters disabled: no second copy, and no placement to choose.
            self._model = AdaptersDisabled(model)
        elif self.kind in ("frozen", "snapshot"):
            self._model = frozen_copy(model)
            if cfg.reference_placement != "replicated":
                from mmreason.engine import partitioned_frozen_model

                self._model = partitioned_frozen_model(self._model, offload_to_cpu=cfg.reference_placement == "offloaded")

    @property
    def is_rollout_policy(self) -> bool:
        """pi_ref is the policy that sampled: the loss reuses the old log-probs as the reference log-probs."""
        return self.kind == "rollout"

    def iteration_starts(self, step: int) -> bool:
        """Whether `step` (1-based) opens a k1.5 iteration (snapshot and rollout kinds only)."""
        return self.kind in ("snapshot", "rollout") and (step - 1) % self.refresh_every == 0

    def begin_step(self, step: int, policy: torch.nn.Module, reset_optimizer: Callable[[], None]) -> None:
        """At a k1.5 iteration start: take the snapshot of `policy` and reset the optimizer if asked.
        (At step 1 the snapshot taken at start-up already is the policy.)"""
        if not self.iteration_starts(step):
            return
        if self.kind == "snapshot" and step > 1:
            copy_weights(policy, self._model)
        if self.reset_optimizer_each_iteration and step > 1:
            reset_optimizer()

    def resumed(self, policy: torch.nn.Module) -> None:
        """After a resume, the snapshot restarts from the restored policy (the iteration's own starting weights
        are not in the checkpoint); a frozen reference stays the starting checkpoint."""
        if self.kind == "snapshot":
            copy_weights(policy, self._model)

    @property
    def model(self) -> Optional[torch.nn.Module]:
        """pi_ref as a model to run, or None when it has none of its own (none: no term; rollout: the old
        log-probs serve as the reference log-probs)."""
        return self._model
