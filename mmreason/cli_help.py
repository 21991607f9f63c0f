"""`--help` and `--print-config` for the config-driven command lines (train.py, curate.py, build_warmup.py).

    python mmreason/train.py --help
    python mmreason/train.py --config configs/quickstart/rl_vision.yaml rollout.group_size=4 --print-config

`--print-config` prints the resolved config as YAML (validated, algo presets filled in), with each key's
docstring and default as a comment above it, so the output is itself a config file one can edit and pass
back with `--config`. Without `--config` it prints the defaults (required keys show as ???).
Nothing here imports torch.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import sys
import textwrap
from typing import Any, Callable, Optional, Sequence

import yaml

HELP_FLAGS = ("-h", "--help")
PRINT_FLAG = "--print-config"


def field_docs(cls: type) -> dict[str, str]:
    """{field name: its docstring} of a dataclass, read from the string literal after each field."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:] + [None]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                docs[node.target.id] = re.sub(r"\s+", " ", inspect.cleandoc(after.value.value)).strip()
    return docs


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return "???"


def _scalar(value: Any) -> str:
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip()
    return text[:-4].strip() if text.endswith("\n...") else text.removesuffix("...").strip()


def describe(cfg: Any, indent: int = 0) -> str:
    """The config `cfg` (a dataclass instance) as commented YAML: docstring and default above each key."""
    lines: list[str] = []
    pad = " " * indent
    docs = field_docs(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        doc = docs.get(f.name, "")
        if dataclasses.is_dataclass(value):
            section_doc = re.sub(r"\s+", " ", inspect.cleandoc(type(value).__doc__ or "")).strip()
            if section_doc and not section_doc.startswith(type(value).__name__ + "("):
                lines += [pad + "# " + line for line in textwrap.wrap(section_doc, 110)]
            lines.append(f"{pad}{f.name}:")
            lines.append(describe(value, indent + 2))
            continue
        default = _default_of(f)
        default_text = "required" if default == "???" else _scalar(default)
        comment = f"{doc} (default: {default_text})" if doc else f"(default: {default_text})"
        lines += [pad + "# " + line for line in textwrap.wrap(comment, 110)]
        lines.append(f"{pad}{f.name}: {_scalar(value)}")
    return "\n".join(line for line in lines if line != "")


def handle(argv: Sequence[str], *, doc: str, schema: type, prog: str,
           loader: Optional[Callable[[Optional[str], list[str]], Any]] = None) -> list[str]:
    """Answer `--help` / `--print-config` (exits); otherwise return argv unchanged for the real run.

    `loader(path, overrides)` loads and validates the config (default: mmreason.config.load_config with `schema`).
    """
    argv = list(argv)
    if any(arg in HELP_FLAGS for arg in argv):
        print(doc.strip())
        raise SystemExit(0)
    if PRINT_FLAG not in argv:
        return argv
    from mmreason.config import ConfigError, load_config, parse_cli

    rest = [arg for arg in argv if arg != PRINT_FLAG]
    try:
        path, overrides = parse_cli(rest)
        if path is None and not overrides:
            cfg = schema()
        else:
            cfg = loader(path, overrides) if loader else load_config(path, overrides, schema=schema)
    except ConfigError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(describe(cfg))
    raise SystemExit(0)
