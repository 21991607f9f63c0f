"""Evaluation: MathVista scoring with the benchmark's rules, the `run` / `score` command line, validation in training.

    load.py         MathVista-schema data (HF parquet / jsonl, our shards) -> Problems
    scoring.py      answer extraction, normalisation and comparison by MathVista's rules
    report.py       accuracy breakdowns; scores.json, scores.md, per_problem.jsonl
    predictions.py  predictions.jsonl with one or several samples per problem: read, write, score
    run.py          generate with a checkpoint on one or several ranks, then score
    cli.py          `python -m mmreason.eval.cli {score,run}` (also scripts/eval_mathvista.py)
    validation.py   the held-out hook the SFT and RL recipes call every N steps
    mathvista_export.py  our problems as a MathVista-schema parquet file
"""
