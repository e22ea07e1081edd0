"""A wave of themes calls sent at once, and the test for two of its new themes being one.

Calls of one wave cannot see each other's new themes, so two may propose the same problem;
`twin_of` finds the one founded first, by normalised title or by most of their words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from triage.analysis.themes.model import NewTheme
from triage.providers.parallel import run_bounded

T = TypeVar("T")
R = TypeVar("R")
WORD = re.compile(r"[a-z0-9_]+(?:[.-][a-z0-9_]+)*")
# Words that say nothing about which problem a theme is.
FILLER = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it"),
        *("of", "on", "or", "the", "to", "when", "with", "without", "about", "after", "before"),
        *("does", "not", "no", "can", "cannot", "reports", "report", "issue", "issues"),
        *("error", "errors", "problem", "problems", "fails", "failing", "failed"),
    }
)
OVERLAP = 0.6  # share of the shorter theme's words the other must have to be the same problem


def run_wave(wave: Sequence[T], send: Callable[[T], R], concurrency: int) -> Iterator[tuple[T, R]]:
    """Every call of the wave at once (up to `concurrency`), answers yielded in wave order."""
    got = dict((id(t), r) for t, r in run_bounded(wave, send, concurrency))
    for task in wave:
        yield task, got[id(task)]


def normal(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in FILLER and len(w) > 1}


def twin_of(title: str, description: str, founded: Sequence[NewTheme]) -> NewTheme | None:
    """The theme in `founded` naming the same problem: same normalised title or most words."""
    name = normal(title)
    mine = words(f"{title} {description}")
    for theme in founded:
        if normal(theme.title) == name:
            return theme
    for theme in founded:
        theirs = words(f"{theme.title} {theme.description}")
        if mine and theirs and len(mine & theirs) >= OVERLAP * min(len(mine), len(theirs)):
            return theme
    return None
