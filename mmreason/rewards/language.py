"""DeepSeek-R1's language-consistency reward: the share of the chain of thought written in the target language.

R1 added it during RL because its chains of thought drifted into mixing languages; the reward is the proportion
of target-language words in the reasoning. Here a "word" is a run of letters of one script (Latin, Cyrillic,
Hangul) or a single Han / kana character (Chinese and Japanese are not written with spaces; one character
stands for roughly one word). Mathematics is not language: LaTeX commands, `$...$` / `\\(...\\)` / `\\[...\\]`
spans, numbers and symbols are dropped before counting, so "\\frac{1}{2}" is not an English word.
"""

from __future__ import annotations

import re

from mmreason.rewards.think import split_think

# Per script: a regular expression matching one counted unit.
SCRIPTS: dict[str, str] = {
    "latin": r"[A-Za-zÀ-ÖØ-öø-ɏ]+",
    "cyrillic": r"[Ѐ-ӿ]+",
    "hangul": r"[가-힣ᄀ-ᇿ]+",
    "han": r"[一-鿿㐀-䶿]",
    "kana": r"[぀-ゟ゠-ヿ]",
}

LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "en": ("latin",), "fr": ("latin",), "de": ("latin",), "es": ("latin",), "it": ("latin",), "pt": ("latin",),
    "zh": ("han",),
    "ja": ("han", "kana"),
    "ko": ("hangul",),
    "ru": ("cyrillic",),
}

_UNIT = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in SCRIPTS.items()))
_MATH = re.compile(r"\$\$.*?\$\$|\$.*?\$|\\\(.*?\\\)|\\\[.*?\\\]", re.DOTALL)
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_MARKUP = re.compile(r"</?think>|<\|[^|>]*\|>")


def check_language(language: str) -> None:
    if language not in LANGUAGE_SCRIPTS:
        raise ValueError(f"reward.language {language!r} is not supported; valid choices: {sorted(LANGUAGE_SCRIPTS)}")


def script_counts(text: str) -> dict[str, int]:
    """Units of each script in `text` after removing math, LaTeX commands and chat markup."""
    text = _MARKUP.sub(" ", text)
    text = _MATH.sub(" ", text)
    text = _LATEX_COMMAND.sub(" ", text)
    counts = dict.fromkeys(SCRIPTS, 0)
    for match in _UNIT.finditer(text):
        counts[match.lastgroup] += 1
    return counts


def chain_of_thought(response: str) -> str:
    """The reasoning of a response: inside <think>...</think> when there is one, else the whole response."""
    reasoning, _final = split_think(response)
    return response if reasoning is None else reasoning


def language_share(text: str, language: str) -> float:
    """Share of `text`'s words in `language` (0..1); 1.0 when it has no words at all (nothing is mixed)."""
    check_language(language)
    counts = script_counts(text)
    total = sum(counts.values())
    if total == 0:
        return 1.0
    return sum(counts[script] for script in LANGUAGE_SCRIPTS[language]) / total


def language_consistency(response: str, language: str) -> float:
    """R1's reward for one response: the target-language share of its chain of thought."""
    return language_share(chain_of_thought(response), language)
