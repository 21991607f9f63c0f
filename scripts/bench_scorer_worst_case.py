"""Worst-case time of the scorers on adversarial responses up to 1 MB (target: every case under 2 s).

    python scripts/bench_scorer_worst_case.py

Each case is scored twice: by the RL reward's `rewards.score` (boxed answer,
verify under the per-answer time limit) and by MathVista's rule-based
extraction + official normalisation. Prints seconds per case and path, the
verdict reason, and a last line `worst: X s (case)`. The first case also pays
for starting the verification helper process; it is run once before timing.
"""

from __future__ import annotations

import time

from mmreason.config import RewardConfig
from mmreason.eval.scoring import extract_mathvista, normalize_mathvista
from mmreason.problem import Problem
from mmreason.rewards import score, symbolic

MB = 1_000_000

TEXT = Problem(pid="t", question="q", answer="x^2+1")
INTEGER = Problem(pid="i", question="q", answer="12", answer_type="integer")
CHOICE = Problem(pid="c", question="q", answer="circle", question_type="multi_choice",
                 choices=["triangle", "square", "circle", "pentagon"])


def cases() -> list[tuple[str, str, Problem]]:
    words = "the cube is red and the sphere is blue "
    return [
        ("binomial of huge numbers", r"\boxed{\binom{10^{7}}{5\cdot10^{6}}}", TEXT),
        ("choose of huge numbers", r"\boxed{{10^{7} \choose 5\cdot10^{6}}}", TEXT),
        ("(x+1)^{2000} vs a polynomial", r"\boxed{(x+1)^{2000}}", TEXT),
        ("power tower", r"\boxed{9^{9^{9^{9}}}}", INTEGER),
        ("huge factorial", r"\boxed{100000!}", INTEGER),
        ("20,000 unclosed boxes", "\\boxed{" * 20_000 + "\\boxed{12}", INTEGER),
        ("1 MB of unclosed boxes", "\\boxed{" * (MB // 7), INTEGER),
        ("1 MB inside one box", "\\boxed{" + "1+" * (MB // 2) + "1}", INTEGER),
        ("1 MB of open braces", "{" * MB, INTEGER),
        ("1 MB of prose, answer at the end", words * (MB // len(words)) + " The answer is 12.", INTEGER),
        ("1 MB of prose, no answer", words * (MB // len(words)), CHOICE),
        ("1 MB of 'the answer is'", "the answer is " * (MB // 14), INTEGER),
        ("1 MB of 'Answer:' lines", "Answer:\n" * (MB // 8), CHOICE),
        ("1 MB of numbers", "12 " * (MB // 3), INTEGER),
        ("1 MB of choice texts", "circle square " * (MB // 14), CHOICE),
        ("1 MB of option letters", "(A) (B) " * (MB // 8), CHOICE),
        ("1 MB of \\text{ groups", "\\boxed{" + "\\text{" * (MB // 7) + "}", INTEGER),
        ("1 MB think then a box", "<think>" + "a" * MB + "</think>\\boxed{12}", INTEGER),
        ("1 MB of dollars", "$" * MB, INTEGER),
        ("1 MB of periods", "." * MB, INTEGER),
        ("1 MB of sentences with numbers", "There are 4 objects, since 2 were removed. " * (MB // 43), INTEGER),
    ]


def timed(fn, *args) -> tuple[float, str]:
    start = time.perf_counter()
    outcome = fn(*args)
    return time.perf_counter() - start, outcome


def main() -> None:
    reward = RewardConfig()
    score("\\boxed{\\sqrt{4}}", INTEGER, reward)  # start the verification helper outside the timings
    worst = (0.0, "")
    print(f"{'case':40s} {'reward s':>9s} {'reason':>18s} {'mathvista s':>12s}  extraction")
    for name, response, problem in cases():
        symbolic.clear_cache()
        reward_s, scores = timed(score, response, problem, reward)
        reason = scores.reason
        eval_s, extraction = timed(extract_mathvista, response, problem)
        normalize_s, _ = timed(normalize_mathvista, extraction, problem)
        eval_s += normalize_s
        print(f"{name:40s} {reward_s:9.3f} {reason:>18s} {eval_s:12.3f}  {extraction[:20]!r}")
        worst = max(worst, (reward_s, f"{name}, reward"), (eval_s, f"{name}, mathvista"))
    print(f"helper: {symbolic.stats}")
    print(f"worst: {worst[0]:.3f} s ({worst[1]})")


if __name__ == "__main__":
    main()
