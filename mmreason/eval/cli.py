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
import sys
from collections.abc import Sequence
from pathlib import Path

from mmreason.eval.load import MathVistaError, load_mathvista
from mmreason.eval.predictions import format_scores, score_file
from mmreason.eval.run import (
    DEFAULT_SAMPLING_TEMPERATURE,
    DEFAULT_TEMPLATE,
    RunError,
    RunSettings,
    resolve_temperature,
    run_evaluation,
)
from mmreason.problem import ProblemError

# ---------------------------------------------------------------- score


def _score_command(args: argparse.Namespace) -> int:
    problems = load_mathvista(args.data)
    _, report = score_file(problems, args.predictions, args.out, args.ignore_empty_extractions)
    out = Path(args.out)
    print(format_scores(report), end="")
    print(f"wrote {out / 'scores.json'}, {out / 'scores.md'}, {out / 'per_problem.jsonl'}")
    return 0


def add_score_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    score = commands.add_parser("score", help="score predictions.jsonl against MathVista-schema data")
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


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    """RunSettings from the command line; counts must be positive, the temperature follows `resolve_temperature`."""
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
        dtype=args.dtype, min_pixels=args.min_pixels, max_pixels=args.max_pixels,
    )


def _run_command(args: argparse.Namespace) -> int:
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
                     help=f"sampling temperature (default: 0, greedy, for one sample; "
                          f"{DEFAULT_SAMPLING_TEMPERATURE} for several)")
    run.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold")
    run.add_argument("--max-new-tokens", type=int, default=RunSettings.max_new_tokens, help="longest response")
    run.add_argument("--batch-size", type=int, default=RunSettings.batch_size, help="prompts per generate call")
    run.add_argument("--template", default=DEFAULT_TEMPLATE,
                     help="prompt template: a name under configs/prompts/ (r1_boxed, ...) or a .jinja path "
                          "(default: MathVista's own query)")
    run.add_argument("--system-prompt", default=None, help="system message before the user turn")
    run.add_argument("--seed", type=int, default=0, help="sampling seed (rank r uses seed + r)")
    run.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    run.add_argument("--min-pixels", type=int, default=None, help="processor min_pixels override")
    run.add_argument("--max-pixels", type=int, default=None, help="processor max_pixels override")
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
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
