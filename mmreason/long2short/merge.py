"""Model merging (Kimi k1.5 long2short method 1): a weighted average of checkpoints of one architecture.

k1.5 averages a long-CoT and a short-CoT model's weights. `merge_state_dicts` is the arithmetic; `merge_checkpoints`
loads HF checkpoints, checks that every parameter matches by name and shape (the error names the first that does
not), and writes an ordinary HF directory whose processor is the first model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch


class MergeError(ValueError):
    """Checkpoints that cannot be averaged; the message names the parameter or argument."""


def check_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """The merge weights: equal when None; else one per model, summing to 1 (within 1e-6)."""
    if count < 2:
        raise MergeError(f"merging needs at least 2 models, got {count}")
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise MergeError(f"--weights: {len(weights)} weights for {count} models")
    if abs(sum(weights) - 1.0) > 1e-6:
        raise MergeError(f"--weights: {list(weights)} sum to {sum(weights)}, not 1")
    return [float(w) for w in weights]


def merge_state_dicts(state_dicts: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float],
                      names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """sum_i weights[i] * state_dicts[i][k] for every parameter k, in float32, cast back to the first model's
    dtype (integer buffers are taken from the first model). Raises MergeError naming the first parameter missing
    from, or shaped differently in, another model."""
    names = list(names) if names is not None else [f"model {i}" for i in range(len(state_dicts))]
    first = state_dicts[0]
    for other, name in zip(state_dicts[1:], names[1:]):
        for key, tensor in first.items():
            if key not in other:
                raise MergeError(f"parameter {key!r} of {names[0]} is missing from {name}")
            if other[key].shape != tensor.shape:
                raise MergeError(f"parameter {key!r}: shape {tuple(tensor.shape)} in {names[0]} but "
                                 f"{tuple(other[key].shape)} in {name}")
        extra = next((key for key in other if key not in first), None)
        if extra is not None:
            raise MergeError(f"parameter {extra!r} of {name} is missing from {names[0]}")
    merged = {}
    for key, tensor in first.items():
        if not tensor.is_floating_point():
            merged[key] = tensor.clone()
            continue
        total = sum(w * sd[key].float() for w, sd in zip(weights, state_dicts))
        merged[key] = total.to(tensor.dtype)
    return merged


def merge_checkpoints(paths: Sequence[str | Path], out: str | Path, weights: Sequence[float] | None = None) -> Path:
    """Average HF checkpoints `paths` into `out` (model + the first model's processor); returns `out`."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    weights = check_weights(weights, len(paths))
    models = [AutoModelForImageTextToText.from_pretrained(str(p), dtype="auto") for p in paths]
    first_type = type(models[0]).__name__
    for model, path in zip(models[1:], paths[1:]):
        if type(model).__name__ != first_type:
            raise MergeError(f"{path} is a {type(model).__name__}, {paths[0]} a {first_type}: not one architecture")
    merged = merge_state_dicts([m.state_dict() for m in models], weights, [str(p) for p in paths])
    models[0].load_state_dict(merged)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models[0].save_pretrained(out)
    AutoProcessor.from_pretrained(str(paths[0])).save_pretrained(out)
    for extra in ("mmreason_generation.json",):  # how the first model was prompted, for the evaluator
        source = Path(paths[0]) / extra
        if source.is_file():
            (out / extra).write_text(source.read_text())
    return out
