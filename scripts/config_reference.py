"""Print the config reference (docs/config.md) generated from the config dataclasses.

    python scripts/config_reference.py > docs/config.md

Every section and key of the training config (`mmreason/config.py`, read by `mmreason/train.py`),
the curation config (`mmreason/curation/config.py`, `data_prep/curate.py`) and the warmup-data config
(`mmreason/warmup/config.py`, `data_prep/build_warmup.py`): type, default and the field's docstring
(the string literal after each field). The files are parsed with `ast`, not imported, so the
reference shows exactly what the source says. `tests/test_config_reference.py` checks that
docs/config.md is up to date.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (title, file, root dataclass, how it is used)
CONFIGS = (
    ("Training config", "mmreason/config.py", "Config",
     "`deepspeed mmreason/train.py --config FILE.yaml [key=value ...]`; examples in `configs/*.yaml`, `configs/quickstart/`."),
    ("Curation config", "mmreason/curation/config.py", "CurateConfig",
     "`python data_prep/curate.py --config FILE.yaml [key=value ...]`; examples in `configs/curate.yaml`, `configs/quickstart/`."),
    ("Warmup-data config", "mmreason/warmup/config.py", "WarmupConfig",
     "`python data_prep/build_warmup.py --config FILE.yaml [key=value ...]`; examples in `configs/warmup.yaml`, `configs/quickstart/`."),
    ("long2short-data config", "mmreason/long2short/config.py", "Long2ShortConfig",
     "`python data_prep/build_long2short.py --config FILE.yaml [key=value ...]`; example in `configs/quickstart/long2short.yaml`."),
)


@dataclass
class Field:
    name: str
    type: str
    default: str
    doc: str
    section: str | None  # the dataclass name when the field is a nested section


@dataclass
class Section:
    name: str
    file: str
    doc: str
    fields: list[Field]


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", inspect.cleandoc(text)).strip()


def is_dataclass_def(node: ast.AST) -> bool:
    if not isinstance(node, ast.ClassDef):
        return False
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        if name == "dataclass":
            return True
    return False


def call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return None


def render_default(value: ast.expr | None) -> str:
    """The default as written in the source; `required` for MISSING or no default."""
    if value is None:
        return "required"
    if isinstance(value, ast.Name) and value.id == "MISSING":
        return "required"
    if call_name(value) == "field":
        keywords = {k.arg: k.value for k in value.keywords}  # type: ignore[union-attr]
        if "default" in keywords:
            return render_default(keywords["default"])
        factory = keywords.get("default_factory")
        if isinstance(factory, ast.Lambda):
            return ast.unparse(factory.body)
        if isinstance(factory, ast.Name):
            return {"list": "[]", "dict": "{}", "set": "set()", "tuple": "()"}.get(factory.id, f"{factory.id}()")
        return "required"
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return '"' + value.value.replace('"', '\\"') + '"'
    return ast.unparse(value)


def parse_file(rel: str) -> dict[str, Section]:
    tree = ast.parse((ROOT / rel).read_text(), filename=rel)
    sections: dict[str, Section] = {}
    for node in tree.body:
        if not is_dataclass_def(node):
            continue
        body = node.body  # type: ignore[attr-defined]
        doc = ""
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            doc = one_line(body[0].value.value)
        fields = []
        for i, stmt in enumerate(body):
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            nxt = body[i + 1] if i + 1 < len(body) else None
            field_doc = ""
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                field_doc = one_line(nxt.value.value)
            fields.append(Field(stmt.target.id, ast.unparse(stmt.annotation), render_default(stmt.value), field_doc,
                                None))
        sections[node.name] = Section(node.name, rel, doc, fields)  # type: ignore[attr-defined]
    return sections


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(fields: list[Field], documented: dict[str, str]) -> list[str]:
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for f in fields:
        doc = f.doc
        if f.type in documented:  # a nested section documented elsewhere
            doc = f"{doc} Keys: those of {documented[f.type]}.".strip()
        lines.append(f"| `{f.name}` | `{cell(f.type)}` | `{cell(f.default)}` | {cell(doc)} |")
    return lines


def render() -> str:
    classes: dict[str, Section] = {}
    for _title, rel, _root, _usage in CONFIGS:
        classes.update(parse_file(rel))
    out = [
        "# Config reference",
        "",
        "Generated from the config dataclasses by `python scripts/config_reference.py > docs/config.md`;",
        "do not edit by hand (`tests/test_config_reference.py` fails when this file is stale).",
        "",
        "A YAML file sets values and `section.key=value` arguments on the command line override them",
        "(`train.max_steps=20`, `\"eval_sets=[a,b]\"`). Unknown keys and wrong types are errors that name",
        "the key; the resolved config is written to the run directory. Defaults are shown as written in",
        "Python: `None` is `null` in YAML, `True` is `true`; `required` keys have no default.",
        "",
    ]
    documented: dict[str, str] = {}
    for title, rel, root_name, usage in CONFIGS:
        root = classes[root_name]
        out += [f"## {title}", "", f"`{rel}`, class `{root_name}`: {usage}", ""]
        if root.doc:
            out += [root.doc, ""]
        top = [f for f in root.fields if f.type not in classes]
        nested = [f for f in root.fields if f.type in classes]
        if top:
            out += ["Top-level keys:", ""] + table(top, documented) + [""]
        for f in nested:
            section = classes[f.type]
            heading = f"### `{f.name}`" if title == "Training config" else f"### `{f.name}` ({title.split()[0].lower()})"
            out += [heading, ""]
            intro = " ".join(text for text in (f.doc, section.doc) if text)
            if f.type in documented:
                same = f"The same keys as {documented[f.type]} (class `{f.type}`); default here: `{f.default}`."
                out += [f"{intro} {same}".strip(), ""]
                continue
            documented[f.type] = f"the {title.lower()}'s `{f.name}` section"
            if intro:
                out += [intro, ""]
            out += table(section.fields, documented) + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
