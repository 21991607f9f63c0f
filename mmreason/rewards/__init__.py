"""Verifiable rewards: answer extraction, verification (math_verify, guarded), format, scoring, and the whole
RL reward (`compute_reward`: every term, its weight and the weighted sum).

    from mmreason.rewards import compute_reward, score, score_all, check_ground_truth

Imports only torch, the standard library, math_verify and mmreason.problem /
mmreason.config, so DataLoader workers and evaluation can use it without
transformers.
"""

from mmreason.rewards.extract import Extraction, extract_answer
from mmreason.rewards.format import format_reward
from mmreason.rewards.reward import RewardRecord, compute_reward
from mmreason.rewards.score import BatchScores, Scores, score, score_all
from mmreason.rewards.verify import Verdict, check_ground_truth, judge_answer, verify_answer

__all__ = [
    "Extraction",
    "extract_answer",
    "format_reward",
    "Verdict",
    "judge_answer",
    "verify_answer",
    "check_ground_truth",
    "Scores",
    "BatchScores",
    "score",
    "score_all",
    "RewardRecord",
    "compute_reward",
]
