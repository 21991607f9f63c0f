"""Time MathVista scoring (and the RL reward) on 1,000 synthetic predictions of every answer type.

    python scripts/bench_mathvista_score.py [--n 1000] [--seed 0]

Builds MathVista-schema rows (multi_choice text, integer with and without a
unit, float at precision 1 and 2, list, free-form text), writes one response
per row in the styles models produce (long <think> block, boxed LaTeX, "the
answer is", a bare option letter, hedges), and prints seconds and
predictions per second for `score_predictions` and for `rewards.score_all`.
The target is under 10 s for 1,000 predictions on one core.
"""

from __future__ import annotations

import argparse
import random
import time

from mmreason.config import RewardConfig
from mmreason.eval.load import problem_from_mathvista
from mmreason.eval.scoring import Prediction, score_predictions
from mmreason.rewards import score_all


def make_row(i: int, rng: random.Random) -> tuple[dict, str]:
    """One MathVista-schema row and a response to it."""
    kind = i % 6
    a, b = rng.randint(2, 60), rng.randint(2, 60)
    think = "<think>" + " ".join(f"step {k}: {a} + {k} = {a + k}." for k in range(rng.randint(20, 80))) + "</think>\n"
    base = {"pid": str(i), "question": f"Question {i}?", "unit": None, "precision": None, "choices": None,
            "metadata": {"task": ["figure question answering", "geometry problem solving"][i % 2],
                         "skills": ["arithmetic reasoning", "algebraic reasoning"][: 1 + i % 2],
                         "grade": "high school", "language": "english", "source": f"src{i % 5}",
                         "context": "bar chart", "category": "math-targeted-vqa"}}
    right = rng.random() < 0.6
    if kind == 0:
        choices = [f"{a + k} degrees" for k in range(4)]
        row = dict(base, question_type="multi_choice", answer_type="text", choices=choices, answer=choices[2])
        response = think + rng.choice([r"\boxed{C}", "The answer is (C).", "C", r"\boxed{A}" if not right else "(C)"])
    elif kind == 1:
        row = dict(base, question_type="free_form", answer_type="integer", answer=str(a * b), unit="cm")
        response = think + (f"So AB = \\boxed{{{a * b} \\text{{ cm}}}}" if right else f"\\boxed{{{a * b} or {a * b + 1}}}")
    elif kind == 2:
        row = dict(base, question_type="free_form", answer_type="float", answer=f"{a / b:.1f}", precision=1.0)
        response = think + (f"\\boxed{{\\frac{{{a}}}{{{b}}}}}" if right else f"the answer is {a / b + 0.5:.2f}")
    elif kind == 3:
        row = dict(base, question_type="free_form", answer_type="float", answer=f"{a / b:.2f}", precision=2.0)
        response = think + (f"Answer: {a / b:.4f}" if right else "I cannot tell.")
    elif kind == 4:
        row = dict(base, question_type="free_form", answer_type="list", answer=f"[{a}, {b}]")
        response = think + (f"\\boxed{{[{a}, {b}]}}" if right else f"\\boxed{{[{b}, {a}]}}")
    else:
        row = dict(base, question_type="free_form", answer_type="integer", answer=str(a))
        # \sqrt{...} goes through math_verify's LaTeX parser (the slow path); the rest is read directly.
        spoken = rng.choice([f"there are {a} objects", f"\\boxed{{\\sqrt{{{a * a}}}}}"])
        response = think + (spoken if right else f"\\boxed{{x = {a + 1}}}")
    return row, response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of predictions")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    pairs = [make_row(i, rng) for i in range(args.n)]
    problems = [problem_from_mathvista(row, f"synthetic row {i}") for i, (row, _) in enumerate(pairs)]
    predictions = [Prediction(problem.pid, response) for problem, (_, response) in zip(problems, pairs)]

    start = time.perf_counter()
    _, report = score_predictions(problems, predictions)
    mathvista_seconds = time.perf_counter() - start

    start = time.perf_counter()
    rewards = score_all([p.response for p in predictions], problems, RewardConfig(answer_sources=["boxed", "answer_is"]))
    reward_seconds = time.perf_counter() - start

    overall = report["overall"]
    print(f"predictions: {args.n}  (mean response length {sum(len(p.response) for p in predictions) / args.n:.0f} chars)")
    print(f"mathvista score_predictions: {mathvista_seconds:.2f} s  {args.n / mathvista_seconds:.0f} predictions/s  "
          f"accuracy {overall['accuracy']:.3f}")
    print(f"rewards.score_all:           {reward_seconds:.2f} s  {args.n / reward_seconds:.0f} responses/s  "
          f"mean accuracy reward {rewards.accuracy.mean().item():.3f}")
    print("target: under 10 s per 1,000 predictions on one core:", "OK" if mathvista_seconds < 10 else "TOO SLOW")


if __name__ == "__main__":
    main()
