"""The hf engine: transformers' `generate` with its KV cache, on the live policy (what every caller used before)."""

from __future__ import annotations

from typing import Any

from mmreason.generation import Generation, Prompts, generate


class HFEngine:
    """Samples from the model it is handed, so there is nothing to sync, put to sleep or release."""

    name = "hf"
    needs_images = False

    def generate(self, model: Any, processor: Any, prompts: Prompts, *, num_samples: int = 1, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int = 256, synced_gpus: bool = False,
                 min_new_tokens: int = 0) -> Generation:
        return generate(model, processor, prompts.batch, num_samples=num_samples, temperature=temperature, top_p=top_p,
                        max_new_tokens=max_new_tokens, synced_gpus=synced_gpus, min_new_tokens=min_new_tokens)

    def sync_weights(self, model: Any) -> None:
        pass

    def sleep(self) -> None:
        pass

    def wake(self) -> None:
        pass

    def close(self) -> None:
        pass
