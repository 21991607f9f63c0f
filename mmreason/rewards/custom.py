"""A reward term of the user's own, named in the config as `reward.function`.

    reward:
      function: examples/reward_function/unit_mentioned.py:unit_mentioned   # or package.module:function
      function_weight: 0.2

The function is called once per batch of responses, with one problem per response::

    def my_term(responses: list[str], problems: list[Problem], *, lengths: torch.Tensor,
                truncated: torch.Tensor, step: int) -> list[float] | torch.Tensor:
        ...  # one finite number per response

`lengths` [N] are response lengths in tokens (end-of-turn token included), `truncated` [N] bool marks responses
cut at rollout.max_new_tokens, `step` is the RL step (1-based). The term is added to the reward with weight
`reward.function_weight` and logged as `reward/<function name>`. Loading and the signature are checked when the
config is validated, before any model is loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

RewardFunction = Callable[..., Any]

RESERVED_TERM_NAMES = ("accuracy", "format", "length", "overlong", "repetition", "language", "overall")


class RewardFunctionError(ValueError):
    """`reward.function` cannot be loaded or called as documented; the message says which and why."""


def _load_module(location: str, spec_text: str) -> Any:
    path = Path(location)
    if location.endswith(".py"):
        if not path.is_file():
            raise RewardFunctionError(f"reward.function {spec_text!r}: file {location!r} does not exist")
        module_spec = importlib.util.spec_from_file_location(f"mmreason_user_reward_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise RewardFunctionError(f"reward.function {spec_text!r}: cannot import {location!r}")
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            raise RewardFunctionError(f"reward.function {spec_text!r}: importing {location!r} failed: {err!r}") from err
        return module
    try:
        return importlib.import_module(location)
    except Exception as err:
        raise RewardFunctionError(f"reward.function {spec_text!r}: cannot import module {location!r}: {err!r}") from err


def load_reward_function(spec_text: str) -> RewardFunction:
    """"path/to/file.py:fn" or "package.module:fn" -> the function, its signature checked against the contract."""
    location, sep, name = spec_text.rpartition(":")
    if not sep or not location or not name:
        raise RewardFunctionError(f"reward.function {spec_text!r}: expected 'path/to/file.py:function' or 'package.module:function'")
    module = _load_module(location, spec_text)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise RewardFunctionError(f"reward.function {spec_text!r}: {location!r} has no function {name!r}")
    if fn.__name__ in RESERVED_TERM_NAMES:
        raise RewardFunctionError(f"reward.function {spec_text!r}: {fn.__name__!r} is a built-in term's name; "
                                  f"rename the function (reserved: {list(RESERVED_TERM_NAMES)})")
    try:
        inspect.signature(fn).bind([], [], lengths=torch.zeros(0), truncated=torch.zeros(0, dtype=torch.bool), step=0)
    except TypeError as err:
        raise RewardFunctionError(f"reward.function {spec_text!r}: {name}{inspect.signature(fn)} does not accept "
                                  f"(responses, problems, *, lengths, truncated, step): {err}") from err
    return fn


def call_reward_function(fn: RewardFunction, responses: Sequence[str], problems: Sequence[Any], *,
                         lengths: torch.Tensor, truncated: torch.Tensor, step: int) -> torch.Tensor:
    """The user term [N] as float32; wrong lengths and non-finite values are errors naming the function."""
    values = fn(list(responses), list(problems), lengths=lengths, truncated=truncated, step=step)
    try:
        term = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    except (TypeError, ValueError) as err:
        raise RewardFunctionError(f"reward function {fn.__name__!r} returned {type(values).__name__}, "
                                  "expected one number per response") from err
    if term.numel() != len(responses):
        raise RewardFunctionError(f"reward function {fn.__name__!r} returned {term.numel()} values for "
                                  f"{len(responses)} responses")
    if not all(math.isfinite(v) for v in term.tolist()):
        raise RewardFunctionError(f"reward function {fn.__name__!r} returned NaN or infinite values")
    return term
