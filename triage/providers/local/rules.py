"""Rules for when no labelled history exists: issue-template headings and keywords.

Issue templates are the strongest signal a reporter gives ("### Steps to reproduce" is a bug
form, "Is your feature request related to a problem?" a feature form), so headings weigh more
than loose keywords, and the title more than the body. Confidence stays low on purpose: a rule
guess is worth showing, never worth writing a label for (it stays under `[labels]
min_confidence`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_RULE_CONFIDENCE = 0.6
HEADING_WEIGHT = 3.0
TITLE_WEIGHT = 2.0
BODY_CHARS = 6000


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


# category -> (template headings, keywords). Only categories the taxonomy has are used.
RULES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "bug": (
        _rx(
            r"steps to reproduce",
            r"repro(duction)? steps",
            r"describe the bug",
            r"bug report",
            r"(expected|actual|current|observed) behaviou?r",
            r"what (happened|did you expect)",
            r"error (message|log)s?",
            r"stack ?trace",
            r"issue type\W+bug",
        ),
        _rx(
            r"\bbug\b",
            r"\bcrash(es|ed|ing)?\b",
            r"\berror\b",
            r"\bexception\b",
            r"traceback",
            r"\bfail(s|ed|ing|ure)?\b",
            r"\bbroken\b",
            r"\bregression\b",
            r"segfault|segmentation fault",
            r"does(n't| not) work",
            r"not working",
            r"\bwrong\b",
            r"\bunexpected\b",
        ),
    ),
    "feature": (
        _rx(
            r"feature request",
            r"is your feature request related",
            r"describe the solution you'?d like",
            r"describe alternatives",
            r"proposed (solution|feature|api)",
            r"\bmotivation\b",
            r"issue type\W+feature",
        ),
        _rx(
            r"\bfeature\b",
            r"\benhancement\b",
            r"\bproposal\b",
            r"\bsuggest(ion)?\b",
            r"would be (nice|great|useful|helpful)",
            r"\b(add|adding) (support|an? option|the ability)\b",
            r"\bsupport for\b",
            r"\ballow (users|me|to)\b",
            r"\bit would be\b",
            r"\bplease add\b",
        ),
    ),
    "question": (
        _rx(r"\bquestion\b", r"issue type\W+(support|question)", r"\bneed help\b"),
        _rx(
            r"^\s*(how|what|why|where|when|which|can|could|is|are|does|do|should)\b.*\?",
            r"\bhow (do|can|to|should|would)\b",
            r"\bis (it|there) (possible|a way)\b",
            r"\bany (idea|way|hint)s?\b",
            r"\bhelp\b",
            r"\bconfused\b",
            r"\bunderstand\b",
            r"\?\s*$",
        ),
    ),
    "docs": (
        _rx(r"documentation (issue|request)", r"\bdocs?\b.*\b(page|url|link)\b"),
        _rx(
            r"\bdocumentation\b",
            r"\bdocs?\b",
            r"\btypo\b",
            r"\breadme\b",
            r"\btutorial\b",
            r"\bbroken link\b",
        ),
    ),
}

PRIORITY_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("critical", _rx(r"security", r"vulnerab", r"\bcve-", r"data loss", r"corrupt")),
    (
        "high",
        _rx(
            r"\bcrash",
            r"segfault|segmentation fault",
            r"\bregression\b",
            r"\bhangs?\b|\bfreez",
            r"memory leak",
            r"\bpanic\b",
            r"\bblocker\b",
        ),
    ),
    ("low", _rx(r"\btypo\b", r"\bcosmetic\b", r"\bnit\b", r"\bminor\b")),
]


@dataclass(frozen=True)
class RuleGuess:
    category: str
    confidence: float
    reason: str


def _score(pattern: re.Pattern[str], text: str) -> int:
    return len(pattern.findall(text))


def _by_description(text: str, categories: dict[str, str]) -> str | None:
    """The category whose name or description shares most words with the text."""
    words = set(re.findall(r"[a-z]{4,}", text.lower()))
    best, best_hits = None, 0
    for cat, description in categories.items():
        hits = len(words & set(re.findall(r"[a-z]{4,}", f"{cat} {description}".lower())))
        if hits > best_hits:
            best, best_hits = cat, hits
    return best


def classify(title: str, body: str, categories: dict[str, str]) -> RuleGuess:
    """The category the rules point to, with a modest confidence and why."""
    body = body[:BODY_CHARS]
    scores: dict[str, float] = {}
    for cat, (headings, keywords) in RULES.items():
        if cat not in categories:
            continue
        scores[cat] = (
            HEADING_WEIGHT * (_score(headings, body) + _score(headings, title))
            + TITLE_WEIGHT * _score(keywords, title)
            + min(_score(keywords, body), 5)  # a long log must not out-vote the title
        )
    total = sum(scores.values())
    if total > 0:
        cat = max(scores, key=lambda c: (scores[c], -list(categories).index(c)))
        share = scores[cat] / total
        confidence = round(min(MAX_RULE_CONFIDENCE, 0.2 + 0.4 * share), 3)
        return RuleGuess(cat, confidence, "template headings and keywords")
    fallback = _by_description(f"{title} {body}", categories) or next(iter(categories))
    return RuleGuess(fallback, 0.1, "no rule matched; closest category description")


def priority(title: str, body: str, priorities: Sequence[str], default: str) -> str:
    """A priority from severity words ("crash", "security"), when the taxonomy has that level."""
    text = f"{title}\n{body[:BODY_CHARS]}"
    for level, pattern in PRIORITY_RULES:
        if level in priorities and pattern.search(text):
            return level
    return default
