"""The MathVista command line: score predictions, or generate with a checkpoint and score.

    python -m mmreason.eval.cli score --data testmini.parquet --predictions preds.jsonl --out results/
    python -m mmreason.eval.cli run --model CKPT --data testmini.parquet --out results/
    deepspeed --num_gpus 8 scripts/eval_mathvista.py run --model CKPT --data testmini.parquet --out results/

`score` reads predictions.jsonl in any shape of mmreason/eval/predictions.py
and applies MathVista's rules (mmreason/eval/scoring.py); `run` generates
first (mmreason/eval/run.py). Both write scores.json, scores.md and
per_problem.jsonl into --out (mmreason/eval/report.py). Errors in the data,
the predictions or the settings print one line naming the file, row or flag
and exit with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mmreason.config import ENGINES
from mmreason.eval.load import MathVistaError, load_mathvista
from mmreason.problem import ProblemError

if TYPE_CHECKING:
    from mmreason.eval.run import RunSettings

# mmreason.eval.run and .predictions import torch: the commands import them after parsing, so `--help`
# answers at once.
FROM_CHECKPOINT = ("template", "system_prompt", "max_new_tokens", "min_pixels", "max_pixels")
"""`run` flags whose default is how the checkpoint was trained (its mmreason_generation.json)."""

# ---------------------------------------------------------------- score


def _score_command(args: argparse.Namespace) -> int:
    from mmreason.eval.predictions import format_scores, score_file

    problems = load_mathvista(args.data)
    _, report = score_file(problems, args.predictions, args.out, args.ignore_empty_extractions)
    out = Path(args.out)
    print(format_scores(report), end="")
    print(f"wrote {out / 'scores.json'}, {out / 'scores.md'}, {out / 'per_problem.jsonl'}")
    return 0


def add_score_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    score = commands.add_parser("score", help="score predictions.jsonl against MathVista-schema data",
                                description="Score a predictions.jsonl against MathVista-schema data with MathVista's "
                                            "rules (answer extraction, then exact / numeric / choice matching); no "
                                            "model is loaded. Writes scores.json, scores.md, per_problem.jsonl.")
    score.add_argument("--data", required=True, help=".parquet / .jsonl in the HF AI4Math/MathVista schema, or shards")
    score.add_argument("--predictions", required=True,
                       help='jsonl: {"pid": ..., "response": ...} (or "extraction") per line; several samples per pid '
                            'as "sample": i lines or a "responses" list (what `run` writes)')
    score.add_argument("--out", required=True, help="directory for scores.json, scores.md, per_problem.jsonl")
    score.add_argument("--ignore-empty-extractions", action="store_true",
                       help="count an empty multiple-choice extraction wrong instead of mapping it to the nearest choice")
    score.set_defaults(func=_score_command)
    return score


# ---------------------------------------------------------------- run


def checkpoint_defaults(args: argparse.Namespace, announce: bool = True) -> argparse.Namespace:
    """Fill the FROM_CHECKPOINT flags left unset from the checkpoint's mmreason_generation.json (how it was
    prompted in training), else from RunSettings' defaults; explicit flags win. Prints what it used."""
    from mmreason.eval.run import DEFAULT_TEMPLATE, RunSettings
    from mmreason.export_meta import GENERATION_FILE, read_generation

    trained = read_generation(args.model)
    fallback = {"template": DEFAULT_TEMPLATE, "system_prompt": None, "max_new_tokens": RunSettings.max_new_tokens,
                "min_pixels": None, "max_pixels": None}
    used = {}
    for name in FROM_CHECKPOINT:
        if getattr(args, name) is not None:
            used[name] = (getattr(args, name), "flag")
        elif trained.get(name) is not None:
            setattr(args, name, trained[name])
            used[name] = (trained[name], GENERATION_FILE)
        else:
            setattr(args, name, fallback[name])
            used[name] = (fallback[name], "default")
    if announce and int(os.environ.get("RANK", "0")) == 0:
        print("eval: " + ", ".join(f"{name}={value!r} ({source})" for name, (value, source) in used.items()),
              file=sys.stderr)
    return args


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    """RunSettings from the command line; counts must be positive, the temperature follows `resolve_temperature`."""
    from mmreason.eval.run import RunError, RunSettings, resolve_temperature

    if getattr(args, "template", "unset") is None or getattr(args, "max_new_tokens", "unset") is None:
        checkpoint_defaults(args, announce=False)
    for flag, value in (("--limit", args.limit), ("--batch-size", args.batch_size),
                        ("--max-new-tokens", args.max_new_tokens)):
        if value is not None and value < 1:
            raise RunError(f"{flag} must be at least 1, got {value}")
    if not 0 < args.top_p <= 1:
        raise RunError(f"--top-p must be in (0, 1], got {args.top_p}")
    return RunSettings(
        model=args.model, data=args.data, template=args.template, system_prompt=args.system_prompt,
        samples=args.samples, temperature=resolve_temperature(args.samples, args.temperature), top_p=args.top_p,
        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, limit=args.limit, seed=args.seed,
        dtype=args.dtype, min_pixels=args.min_pixels, max_pixels=args.max_pixels, engine=args.engine,
    )


def _run_command(args: argparse.Namespace) -> int:
    from mmreason.eval.predictions import format_scores
    from mmreason.eval.run import RunError, run_evaluation
    from mmreason.preflight import PreflightError, check_eval

    checkpoint_defaults(args)
    try:  # before the model is loaded
        check_eval(args.model, args.data, args.template, args.engine)
    except PreflightError as err:
        raise RunError(str(err)) from None
    out = Path(args.out)
    report = run_evaluation(settings_from_args(args), out)
    if report is not None:
        print(format_scores(report), end="")
        print(f"wrote {out / 'predictions.jsonl'}, {out / 'scores.json'}, {out / 'scores.md'}, "
              f"{out / 'per_problem.jsonl'}, {out / 'generation.json'}")
    return 0


def add_run_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    run = commands.add_parser("run", help="generate answers with a checkpoint, then score them",
                              description="Generate answers to MathVista with a checkpoint, then score them.")
    run.add_argument("--model", required=True, help="checkpoint directory or hub id (image-text-to-text)")
    run.add_argument("--data", required=True, help=".parquet / .jsonl in the HF AI4Math/MathVista schema, or shards")
    run.add_argument("--out", required=True, help="directory for predictions.jsonl, scores.*, per_problem.jsonl, "
                                                  "generation.json")
    run.add_argument("--limit", type=int, default=None, help="only the first N problems")
    run.add_argument("--samples", type=int, default=1, help="responses per problem (accuracy = pass@1 averaged)")
    run.add_argument("--temperature", type=float, default=None,
                     help="sampling temperature (default: 0, greedy, for one sample; 0.7 for several)")
    run.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold")
    run.add_argument("--max-new-tokens", type=int, default=None,
                     help="longest response (default: the checkpoint's training length from its "
                          "mmreason_generation.json, else 1024)")
    run.add_argument("--batch-size", type=int, default=16, help="prompts per generate call (default: 16)")
    run.add_argument("--template", default=None,
                     help="prompt template: a name under configs/prompts/ (r1_boxed, ...) or a .jinja path "
                          "(default: the checkpoint's training template from its mmreason_generation.json, "
                          "else MathVista's own query)")
    run.add_argument("--system-prompt", default=None,
                     help="system message before the user turn (default: the checkpoint's training one, if any)")
    run.add_argument("--seed", type=int, default=0, help="sampling seed (rank r uses seed + r)")
    run.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    run.add_argument("--min-pixels", type=int, default=None,
                     help="processor min_pixels override (default: the checkpoint's training value, if any)")
    run.add_argument("--max-pixels", type=int, default=None,
                     help="processor max_pixels override (default: the checkpoint's training value, if any)")
    run.add_argument("--engine", default="hf", choices=ENGINES,
                     help="generation engine: hf (transformers generate) or vllm (a vLLM engine per rank; "
                          "docs/engines.md). Default: hf")
    run.set_defaults(func=_run_command)
    return run


# ---------------------------------------------------------------- entry


def build_parser() -> argparse.ArgumentParser:
    """The CLI; each subcommand registers its handler in `func`."""
    parser = argparse.ArgumentParser(prog="python -m mmreason.eval.cli", description=__doc__.splitlines()[0])
    # The deepspeed launcher (scripts/eval_mathvista.py) passes --local_rank; the rank comes from the environment.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    add_score_parser(commands)
    add_run_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (MathVistaError, ProblemError, FileNotFoundError) as err:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
