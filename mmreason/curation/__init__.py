"""Kimi k1.5-style RL prompt-set curation: diverse coverage, balanced difficulty, accurate evaluability.

One module per step, each `(problems, cfg_section, ...) -> StepResult(kept, removed)`:
dedup, decontam, tagging, evaluability, hackable, blind, difficulty, balance; `pipeline.run_curation`
runs them in that order (entry point: `python data_prep/curate.py --config configs/curate.yaml`).
"""
