"""MathVista answer extraction by rules: what the official GPT-4 extractor would return, without GPT-4.

`extract_mathvista(response, problem)` returns what MathVista's `extraction`
field would hold: an option letter or a choice text for multiple choice, a
plainly written number for integer/float, the list text for lists, else "".
The official normalisation (`scoring.normalize_mathvista`) then runs unchanged.

Only the text after the last ``</think>`` counts when there is one (a response
cut off inside ``<think>`` is read whole). Typography is made ASCII first
(full-width "（Ｂ）", the Unicode minus) and markdown bold is dropped ("= **12 cm**").
A response that answers and then goes on with a "Question:" / "Hint:" line of its
own is read up to that line (a repeat of the problem's own question is not cut).
Then, in order, the first rule that finds something decides:

1. The whole response is the answer: a choice text, an option letter, a number.
2. The last non-empty ``\\boxed{}``.
3. The last answer phrase: "the (final / correct) answer is", "the answer to the
   question is", "the correct option (letter) is", "Answer:", "I choose", Chinese
   "答案是 / 答案为 / 故选 / 选". "Answer:" with nothing after it on its line
   reads the next line only when that line is short (a bare answer), never a
   sentence of reasoning.
4. Multiple choice: the response leads with an option ("(A) yes", "A) 16",
   "B. 12"; a parenthesised capital beyond the options, "(E) 137", is kept as
   the official extractor keeps it); ends with one ("... so (B)."); names
   exactly one choice's text in its last or first sentence, the main clause
   before a leading "If ... ," ("Yes, the function is even.", "The time shown
   is twelve o'clock.", "If algae increases, the fish will decrease."), longer
   choice texts winning over ones they contain ("quarter to" over "quarter");
   a choice of two or more words also matches up to case, punctuation, a
   plural "s" and modal verbs ("the fish would decrease" names "fish
   decreases"); or mentions exactly one option letter in parentheses. For
   yes/no choices, a first sentence that answers neither by name nor by
   letter is read as a statement: negated ("... is not the largest") is no,
   otherwise yes, and a refusal ("does not provide enough information") is no
   answer. When every choice is a number and nothing above names one, the value
   the response states (rule 5, refusing sentences left out) is the extraction,
   as the GPT extractor returns it: "Thus, the perimeter is 22." for choices
   12/14/16/18 is "22", which the official normalisation maps to the nearest choice.
5. Numbers: in the last sentence that states one, the number of the main
   clause ("There are 4 objects left, since 2 of the 6 were removed" -> 4; a
   clause after ", since / because / as / given / compared with ..." is an
   explanation, while ", which is 0.35" states the result); after a copula ("is", "are", "=") when there is one; numbers
   written as words ("three objects left" -> 3) when no other digit is written
   ("There are two bars below 20" -> 2). The last sentence opening with
   "Therefore / Thus / Hence / In conclusion" that states a number is read
   first, then the last sentence restating the question (most of its content
   words: "The year 2015 had the highest sales ..." over a table of values after
   it), then the others from the end, leaving out explanations ("This is because
   ...") and runs longer than MAX_SENTENCE_CHARS; code in ``` fences is not read.
   A number is not the answer when it restates the question: after "than / at
   least / at most / out of" ("12 out of 50 people" -> 12), or next to the same
   word as in the question ("these two people", "3 kilograms of beads"); when
   the main clause holds only such numbers the rest of the sentence is read
   ("... into 3 equal groups, with 2 dots in each group" -> 2), and a sentence
   holding only such numbers states no answer. Numbers in parentheses are
   asides, and a fraction is its value ("3/4" -> 0.75).

Every candidate is cleaned like the GPT extractor's output: LaTeX wrappers
removed, numeric LaTeX written as a plain number ("\\frac{1}{2}" -> "0.5"),
for multiple choice a leading option letter kept alone ("(B) 12" -> "B",
"C (the level would fall)" -> "C", "C: 16 units" -> "C") and a candidate
naming one choice's text reduced to it. Candidates longer than
MAX_CANDIDATE_CHARS are not answers. Every rule is a regular expression or a
scan that runs in linear time, so a 1 MB response is scored in well under a second.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import replace
from typing import Any

from mmreason.problem import Problem
from mmreason.rewards.extract import find_boxes, is_blank_answer, split_think
from mmreason.rewards.symbolic import VerificationTimeout, time_limit
from mmreason.rewards.verify import DEFAULT_TIME_LIMIT, clean_latex, normalize_typography, read_number

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_CANDIDATE_CHARS = 300
"""An extracted answer longer than this is a paragraph, not an answer."""
MAX_SENTENCE_CHARS = 4 * MAX_CANDIDATE_CHARS
"""A run of text this long without a sentence end is not read as a statement of the answer."""
MAX_QUESTION_CHARS = 5000
"""Only this much of a question is read for its numbers and words."""
MAX_PHRASES = 10
"""Only the last this many answer phrases are read (a response repeating "Answer:" 100,000 times stays fast)."""

# ---------------------------------------------------------------- patterns

_PHRASE = re.compile(
    r"(?:"
    r"\b(?:the\s+|my\s+|our\s+)?(?:final\s+|correct\s+|right\s+|best\s+|most\s+likely\s+)?"
    r"(?:answer(?:\s+choice)?|option|choice)(?:\s+letter)?(?:\s+to\s+(?:the|this)\s+(?:question|problem))?"
    r"\s+(?:is|would\s+be|should\s+be|will\s+be|must\s+be|=)\b"
    r"|\b(?:final\s+)?answer\s*(?:\*\*)?\s*[:：]"
    r"|\bI\s+(?:would\s+|will\s+)?(?:choose|select|pick|go\s+with)\b"
    r"|答案(?:是|为|應為|应为|[:：])|故选|应选|因此选|所以选|选择?(?=\s*[（(]?[A-Z][)）]?)"
    r")[ \t*:：]*",
    re.IGNORECASE,
)
# The answer after a phrase runs to the end of its sentence: a period followed by space or the end
# (not a decimal point), a Chinese full stop, or the end of the line.
_SENTENCE_END = re.compile(r"\.\s|\.$|。|\n")
_NEXT_LINE = re.compile(r"[ \t*]*\n\s*([^\n]*)")
_MAX_NEXT_LINE = 60

_LETTER_ONLY = re.compile(r"^(?:(?:option|choice)\s*)?[(\[]?([A-Za-z])[)\]]?[.:)]?$", re.IGNORECASE)
_LETTER_LEAD = re.compile(
    r"^(?:(?i:option|choice)\s*)?(?:[(\[]([A-Za-z])[)\]]|([A-Z])\)|([A-Z])[.:](?=\s|$))\s*[-:=]?\s*(.*)$", re.DOTALL
)
_FINAL_LETTER = re.compile(r"(?:^|[\s:(（])[(\[]?([A-Z])[)\]]?[.)。]?\s*$")
_PAREN_LETTER = re.compile(r"\(([A-Z])\)")
_NUMBER = re.compile(
    r"(?<![\w./])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/[1-9]\d*(?![\d.,]\d))?(?![\d])|(?<![\w.])-?\.\d+"
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?。])\s+|\n+")
_SUBORDINATE = re.compile(
    r",\s*(?:since|because|as|given|while|where|whereas|after|when|so\s+that|from|with|compared|versus|vs"
    r"|than|unlike|excluding|not\s+counting)\b"
    r"|\s(?:because|since|given\s+that)\b",
    re.IGNORECASE,
)
_LEADING_SUBORDINATE = re.compile(r"^(?:after|since|because|if|given|when|while|as|by|from|with|using)\b[^,]*,",
                                  re.IGNORECASE)
_COPULA_NUMBER = re.compile(
    r"(?:\b(?:is|are|was|were|be|equals?|gives?|get|makes?|remains?|becomes?|totals?)\b|=|(?<!\d):)\s*"
    r"(?:about|approximately|around|roughly|exactly|only|just|nearly|equal\s+to|\$|\\approx|≈)?\s*\$?\s*"
    r"(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/[1-9]\d*(?![\d.,]\d))?|-?\.\d+)",
    re.IGNORECASE,
)
_WORD_NUMBERS = {
    "zero": 0, "none": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_WORD_NUMBER = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", re.IGNORECASE)
_LIST = re.compile(r"\[[^\[\]\n]{1,200}\]")
_BOLD = re.compile(r"\*\*|__")
_WORD = re.compile(r"[a-z0-9]+")
_MODALS = frozenset({"will", "would", "may", "might", "can", "could", "should", "shall", "likely", "probably"})
_CONCLUSION = re.compile(r"(?:therefore|thus|hence|in conclusion)\b", re.IGNORECASE)
# A model that answers and then goes on with a question of its own ("...\n\nQuestion: ..."): the rest is not its answer.
_RUN_ON = re.compile(r"\n[ \t]*(?:Question|Hint)[ \t]*:", re.IGNORECASE)
_RUN_ON_QUESTION = re.compile(r"Question[ \t]*:[ \t]*([^\n]*)", re.IGNORECASE)
_RUN_ON_WINDOW = 1000
"""A "Hint:" line is followed within this many characters by the "Question:" it belongs to."""
_CONDITION = re.compile(r"\b(?:than|at\s+least|at\s+most|out\s+of)[ \t]*\$?[ \t]*(?=[-.\d])", re.IGNORECASE)
# "This is because there are 4 cylinders": an explanation of the answer, not a statement of it.
_EXPLANATION = re.compile(r"(?:(?:this|that|it)\s+is\s+(?:because|since)|because)\b", re.IGNORECASE)
_PARENTHESES = re.compile(r"\([^()]*\)")
# A number and the word right next to it (only spaces between): "than 6", "two people", "4 kilograms".
_CONTEXT_TOKEN = re.compile(r"[^\W\d_]+|\d+(?:\.\d+)?")
_STOPWORDS = frozenset(
    "a an and are as at be by does do did for from has have how in is it its of on or that the their there these "
    "this those to was were what when where which who why with many much".split()
)
_RESTATES = 0.6
"""A sentence restates the question when it has this share of the question's content words (at least 3)."""
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|none|cannot)\b|n't\b", re.IGNORECASE)
_REFUSAL = re.compile(
    r"\b(?:cannot|can't|unable|impossible|insufficient|sorry|unclear|not\s+(?:possible|clear|enough|sure|provided|given"
    r"|specified|able)|(?:does|do|did)\s+not\s+(?:provide|give|show|specify|include|contain|have\s+enough)"
    r"|without\s+(?:more|specific|additional|further|the|any))\b",
    re.IGNORECASE,
)
# "C (the level would fall)": a letter followed by its option text in parentheses, a 2-shot prompt's answer form.
_LETTER_THEN_PAREN = re.compile(r"^([A-Z])\s+\(")


# ---------------------------------------------------------------- helpers


def _decimal(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def _tidy(candidate: str) -> str:
    """A candidate without markdown emphasis, a closing colon/period, surrounding quotes."""
    text = candidate.strip().strip("*_`\"' ").rstrip(".:。").strip()
    return text.strip("*_`\"' ").strip()


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s.strip()]


def _phrase_candidates(text: str) -> list[str]:
    """What follows each answer phrase, last phrase first ("" entries dropped)."""
    found = []
    ends = [m.start() for m in _SENTENCE_END.finditer(text)] + [len(text)]  # one scan, not one per phrase
    for match in _PHRASE.finditer(text):
        end = ends[bisect.bisect_left(ends, match.end())]
        candidate = _tidy(text[match.end():end]) if end - match.end() <= MAX_CANDIDATE_CHARS else ""
        if not candidate:  # "Answer:" at the end of its line: the next line, when it is a bare answer
            following = _NEXT_LINE.match(text, match.end())
            if following:
                line = _tidy(following.group(1))
                if line and len(line) <= _MAX_NEXT_LINE:
                    candidate = line
        if candidate:
            found.append(candidate)
    return found[::-1][:MAX_PHRASES]


def _mentions(text: str, needle: str) -> list[int]:
    """Start offsets where `needle` occurs in `text` as a whole word (case-insensitive)."""
    if not needle:
        return []
    pattern = r"(?<![\w.])" + re.escape(needle) + r"(?![\w]|\.\d)"
    return [m.start() for m in re.finditer(pattern, text, re.IGNORECASE)]


def _mentioned_choice(text: str, choices: list[str]) -> int | None:
    """The one choice whose text `text` names (a longer choice text wins over one it contains), or None."""
    spans = []
    for index, choice in enumerate(choices):
        needle = choice.strip().rstrip(".")
        for start in _mentions(text, needle):
            spans.append((start, start + len(needle), index))
    if not spans:  # "the fish would decrease" names "fish decreases"
        spans = _loose_mentions(text, choices)
    kept = [s for s in spans if not any(o[0] <= s[0] and s[1] <= o[1] and (o[1] - o[0]) > (s[1] - s[0]) for o in spans)]
    texts = {choices[index].strip().lower() for _, _, index in kept}
    if len(texts) != 1:
        return None
    return kept[0][2]


def _stems(text: str) -> list[str]:
    """Lower-case words with a plural "s" dropped and modal verbs left out ("plants will increase" reads as
    "plants increase"): the word sequence a loose mention is matched on."""
    return [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _WORD.findall(text.lower()) if w not in _MODALS]


def _loose_mentions(text: str, choices: list[str]) -> list[tuple[int, int, int]]:
    """(start, end, choice index) in word positions for choices of two or more words whose word sequence
    the text contains up to case, punctuation and plural "s"."""
    words = _stems(text)
    spans = []
    for index, choice in enumerate(choices):
        needle = _stems(choice)
        if len(needle) < 2:
            continue
        for start in range(len(words) - len(needle) + 1):
            if words[start:start + len(needle)] == needle:
                spans.append((start, start + len(needle), index))
    return spans


# ---------------------------------------------------------------- multiple choice


def _resolve_choice(candidate: str, choices: list[str], loose: bool = True) -> str | None:
    """An option letter or a choice text for a multiple-choice candidate, or None when it names neither.

    Strict (loose=False): only a bare letter or exactly a choice text. Loose: also a leading letter
    ("(B) 12"), one choice's text inside it, or one parenthesised letter.
    """
    text = _tidy(clean_latex(candidate))
    letters = LETTERS[: len(choices)]
    only = _LETTER_ONLY.match(text)
    if only and only.group(1).upper() in letters and (only.group(1).isupper() or text != only.group(1)):
        return only.group(1).upper()
    lowered = text.lower()
    for choice in choices:
        if lowered == choice.strip().lower().rstrip("."):
            return choice
    if not loose:
        return None
    lead = _LETTER_LEAD.match(text)
    if lead:
        letter = (lead.group(1) or lead.group(2) or lead.group(3)).upper()
        if letter in letters:
            return letter
    paren = _LETTER_THEN_PAREN.match(text)
    if paren and paren.group(1) in letters:
        return paren.group(1)
    mentioned = _mentioned_choice(text, choices)
    if mentioned is not None:
        return choices[mentioned]
    parens = {m.group(1) for m in _PAREN_LETTER.finditer(text)} & set(letters)
    if len(parens) == 1:
        return parens.pop()
    return None


def _extract_choice(text: str, problem: Problem) -> str:
    choices = list(problem.choices or [])
    letters = LETTERS[: len(choices)]
    whole = _resolve_choice(text, choices, loose=False) if len(text) <= MAX_CANDIDATE_CHARS else None
    if whole is not None:
        return whole
    boxes = [box.content for box in find_boxes(text)[0] if not is_blank_answer(box.content)]
    if boxes:
        content = boxes[-1]
        if len(content) > MAX_CANDIDATE_CHARS:
            return ""
        return _resolve_choice(content, choices) or _tidy(clean_latex(content))
    for candidate in _phrase_candidates(text):
        if len(candidate) <= MAX_CANDIDATE_CHARS:
            resolved = _resolve_choice(candidate, choices)
            if resolved is not None:
                return resolved
    first_line = text.lstrip("*# \t").split("\n", 1)[0].strip()
    lead = _LETTER_LEAD.match(first_line)
    if lead:
        letter = (lead.group(1) or lead.group(2) or lead.group(3)).upper()
        rest = lead.group(4).strip()
        # "A. 12" / "A: yes": a bare letter then the option, not a sentence starting "A. Smith said".
        if letter in letters and (lead.group(1) or lead.group(2) or not rest
                                  or _resolve_choice(rest, choices) == choices[letters.index(letter)]):
            return letter
        if lead.group(1) and lead.group(1).isupper():
            # "(E) 137" with four options: the official extractor keeps the letter, which the nearest-choice
            # normalisation then maps to some option.
            return letter
    final = _FINAL_LETTER.search(text.rstrip("*_ \n"))
    if final and final.group(1) in letters:
        return final.group(1)
    sentences = _sentences(text)
    if sentences:
        for sentence in (sentences[-1], sentences[0]):
            if len(sentence) <= 4 * MAX_CANDIDATE_CHARS:
                # The main clause first: "If algae increases, the fish will decrease." names "fish decreases".
                main = _LEADING_SUBORDINATE.sub("", sentence, count=1).strip()
                for part in dict.fromkeys((main, sentence)):
                    mentioned = _mentioned_choice(part, choices)
                    if mentioned is not None:
                        return choices[mentioned]
    if len(text) <= 4 * MAX_CANDIDATE_CHARS:
        mentioned = _mentioned_choice(text, choices)
        if mentioned is not None:
            return choices[mentioned]
    parens = {m.group(1) for m in _PAREN_LETTER.finditer(text)} & set(letters)
    if len(parens) == 1:
        return parens.pop()
    if choices and all(any(ch.isdigit() for ch in choice) for choice in choices):
        # "Therefore, the length of CD is 12." for choices 5, 6, 8, 10: the value it states, which the official
        # normalisation maps to the nearest choice as it does the GPT extractor's "12" (a refusal states none).
        stated = _sentence_number(text, replace(problem, answer_type="float"), refusals=False)
        if stated:
            return stated
    polar = _polar_answer(sentences[0] if sentences else "", choices)
    return polar if polar is not None else ""


def _polar_answer(sentence: str, choices: list[str]) -> str | None:
    """For yes/no choices, a statement that answers without saying yes or no: "The red cube is not the largest
    object." is no, "There are fewer red cubes than blue spheres." is yes; a refusal is neither."""
    polar = {choice.strip().lower(): choice for choice in choices}
    if set(polar) != {"yes", "no"} or not sentence or len(sentence) > MAX_CANDIDATE_CHARS or _REFUSAL.search(sentence):
        return None
    if _mentions(sentence, "yes") and _mentions(sentence, "no"):  # "Yes or no, it is hard to say."
        return None
    return polar["no"] if _NEGATION.search(sentence) else polar["yes"]


# ---------------------------------------------------------------- numbers


class _Question:
    """What a number-reading rule needs to know about the question: its numbers with the word next to each
    ("How many bars are smaller than 6?" has 6 after "than"; "these two people" has 2 before "people"), and
    its content words."""

    def __init__(self, question: str) -> None:
        self.echoes = frozenset(_number_contexts(question))
        words = {w for w in re.findall(r"[a-z]+", question.lower()) if len(w) > 2 and w not in _STOPWORDS}
        self.words = frozenset(words) if len(words) >= 3 else frozenset()

    def echoed(self, text: str, start: int, end: int) -> bool:
        """Whether the number text[start:end] repeats one of the question's numbers with the same word next to it."""
        return bool(self.echoes) and not self.echoes.isdisjoint(_contexts_at(text, start, end))

    def restated_by(self, sentence: str) -> bool:
        """Whether `sentence` restates the question (has most of its content words)."""
        if not self.words:
            return False
        found = self.words & set(re.findall(r"[a-z]+", sentence.lower()))
        return len(found) >= _RESTATES * len(self.words)


def _number_value(token: str) -> str | None:
    word = _WORD_NUMBERS.get(token.lower())
    if word is not None:
        return str(word)
    try:
        return _decimal(token.replace(",", ""))
    except ValueError:
        return None


def _contexts_at(text: str, start: int, end: int) -> set[tuple[str, str]]:
    """("6", "<than") / ("2", ">people") for the number text[start:end] and the words touching it."""
    value = _number_value(text[start:end])
    if value is None:
        return set()
    found = set()
    before = re.search(r"([^\W\d_]+)[ \t]+$", text[max(0, start - 40):start])
    if before:
        found.add((value, "<" + before.group(1).lower()))
    after = re.match(r"[ \t]+([^\W\d_]+)", text[end:end + 40])
    if after:
        found.add((value, ">" + after.group(1).lower()))
    return found


def _number_contexts(text: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for match in _NUMBER.finditer(text[:MAX_QUESTION_CHARS]):
        found |= _contexts_at(text, match.start(), match.end())
    for match in _WORD_NUMBER.finditer(text[:MAX_QUESTION_CHARS]):
        found |= _contexts_at(text, match.start(), match.end())
    return found


def _plain_number(token: str) -> str:
    """A number as read from text: "1,000" -> "1000", a fraction "3/6" -> "0.5"."""
    token = token.replace(",", "")
    if "/" in token:
        numerator, denominator = token.split("/")
        return _decimal(float(numerator) / float(denominator))
    return token


def _read(text: str, problem: Problem) -> str | None:
    """A plainly written number for `text` when it states exactly one, else None."""
    try:
        value = read_number(text, problem.unit)
    except VerificationTimeout:
        return None
    return _decimal(value) if value is not None else None


def _stated_number(sentence: str, integer: bool, question: _Question | None = None) -> str | None:
    """The number a sentence states as its answer (see rule 5 of the module docstring)."""
    main = _LEADING_SUBORDINATE.sub("", sentence, count=1).strip() or sentence
    cut = _SUBORDINATE.search(main)
    if cut and _NUMBER.search(main[: cut.start()]):
        # The main clause first; when it only restates the question ("The model has 4 dots divided into 2
        # groups, with 2 dots in each group"), the rest of the sentence.
        stated = _clause_number(main[: cut.start()], integer, question)
        return stated if stated is not None else _clause_number(main, integer, question)
    return _clause_number(main, integer, question)


def _clause_number(main: str, integer: bool, question: _Question | None) -> str | None:
    copulas = _COPULA_NUMBER.findall(main)
    if copulas:
        return _plain_number(copulas[-1])
    # "3 bars are higher than 40": a number after "than" / "at least" / "out of" restates the question's
    # condition, as does a number the question has with the same word next to it ("these two people").
    conditions = {m.end() for m in _CONDITION.finditer(main)}  # one scan: the starts of conditioned numbers
    # A number in parentheses is an aside ("the smallest (20-30 million gallons)"), not the stated answer.
    asides = [(m.start(), m.end()) for m in _PARENTHESES.finditer(main)]  # in order, not overlapping
    starts = [a for a, _ in asides]

    def aside(position: int) -> bool:
        index = bisect.bisect_right(starts, position) - 1
        return index >= 0 and position < asides[index][1]

    for match in reversed(list(_NUMBER.finditer(main))):  # the last number that is neither, read from the end
        if match.start() in conditions or aside(match.start()):
            continue
        if question is None or not question.echoed(main, match.start(), match.end()):
            return _plain_number(match.group())
    if integer:  # "There are two bars smaller than 6": the digits are the condition, the answer is in words
        for match in reversed(list(_WORD_NUMBER.finditer(main))):
            if question is None or not question.echoed(main, match.start(), match.end()):
                return str(_WORD_NUMBERS[match.group().lower()])
    return None


def _number_candidate(candidate: str, problem: Problem) -> str | None:
    """The number a candidate answer states: all of it ("\\frac{7}{20}", "12 cm"), else its stated number."""
    cleaned = clean_latex(candidate)
    plain = _read(cleaned, problem)
    if plain is not None:
        return plain
    return _stated_number(cleaned, problem.answer_type == "integer")


def _extract_free_form(text: str, problem: Problem) -> str:
    numeric = problem.answer_type in ("integer", "float")
    if numeric:
        try:
            return _decimal(float(text.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text) else text))
        except (ValueError, OverflowError):
            pass
    boxes = [box.content for box in find_boxes(text)[0] if not is_blank_answer(box.content)]
    candidates = [boxes[-1]] if boxes else _phrase_candidates(text)
    for candidate in candidates:
        if len(candidate) > MAX_CANDIDATE_CHARS:
            continue
        if not numeric:
            return _tidy(clean_latex(candidate))
        stated = _number_candidate(candidate, problem)
        if stated is not None:
            return stated
        if boxes:
            return _tidy(clean_latex(candidate))
    if problem.answer_type == "list":
        lists = _LIST.findall(text)
        return lists[-1] if lists else ""
    if not numeric:
        return ""
    return _sentence_number(text, problem)


def _sentence_number(text: str, problem: Problem, refusals: bool = True) -> str:
    """The stated number of the sentence that answers: the last "Therefore ..." sentence, else the last
    sentence restating the question ("The year 2019 showed the largest difference ..." over a table of
    values after it), else the last sentence stating a number that is not an explanation ("This is because
    ..."). "" when none does. With refusals=False a sentence that refuses ("I cannot tell whether it is 12
    or 14") is not read."""
    integer = problem.answer_type == "integer"
    question = _Question(problem.question)
    # Code is not a statement of the answer ("Therefore, Sam will spend $18." then "```\ntotal = 6 * 3\n```").
    sentences = [x for x in _sentences("".join(text.split("```")[0::2])) if len(x) <= MAX_SENTENCE_CHARS
                 and (_NUMBER.search(x) or (integer and _WORD_NUMBER.search(x)))
                 and (refusals or not _REFUSAL.search(x))]
    concl = [x for x in sentences if _CONCLUSION.match(x)]
    restating = [x for x in sentences if question.restated_by(x)]
    stating = [x for x in reversed(sentences) if not _EXPLANATION.match(x)]
    for sentence in concl[-1:] + restating[-1:] + stating:
        stated = _stated_number(sentence, integer, question)
        if stated is not None:
            return stated
    return ""


def _cut_run_on(text: str, question: str) -> str:
    """The response up to where the model goes on with a question of its own: a later "Question:" (or
    "Hint:") line asking something other than the problem's question. Answers after it answer that other
    question; a repeat of the problem's own question is not a new one."""
    own = _alnum(question)
    for match in _RUN_ON.finditer(text):
        asked = _RUN_ON_QUESTION.search(text, match.start(), match.end() + _RUN_ON_WINDOW)
        repeated = _alnum(asked.group(1)) if asked else ""
        if not (repeated and own.startswith(repeated)):  # the first line of a question that spans lines
            return text[: match.start()].strip()
    return text


def _alnum(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


# ---------------------------------------------------------------- entry point


def extract_mathvista(response: str, problem: Problem) -> str:
    """The answer in a free-text response by rules (see the module docstring); "" when none is found."""
    _, final = split_think(response)
    text = _BOLD.sub("", normalize_typography(final if final is not None else response)).strip()
    if not text:
        return ""
    text = _cut_run_on(text, problem.question)
    with time_limit(DEFAULT_TIME_LIMIT):  # numeric LaTeX is read by sympy, in the time-limited helper
        if problem.question_type == "multi_choice":
            return _extract_choice(text, problem)
        return _extract_free_form(text, problem)


__all__ = ["extract_mathvista", "MAX_CANDIDATE_CHARS"]
