"""What the fake models answer to themes and duplicates prompts (`purpose: themes|duplicates`).

A small deterministic "model": it reads the prompt the way the real one would (themes and
items between their delimiters) and answers in the requested JSON. For themes it recognises the
made-up problems of tests/fakes/corpus.py by their phrases (a well-behaved model, so tests can
check what our code does with its answers); duplicates it judges by TF-IDF similarity.
Importing this module registers both responders on FakeGemini and FakeOpenAI.

Switches per fake, through `switches(fake)`: `unknown_theme_next` (answer that many items with
a theme id the prompt never showed), `ignore_existing` (never reuse an existing theme).
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from tests.fakes.corpus import PROBLEMS, Problem
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

THEME_RE = re.compile(
    r"<<<THEME (?P<id>[TR]\d+)>>>\n(?P<title>[^\n]*)\n(?P<desc>.*?)\n<<<END>>>", re.S
)
ITEM_RE = re.compile(
    r"<<<ITEM (?P<id>i\d+) (?P<source>\w+)>>>\n(?P<title>[^\n]*)\n(?P<text>.*?)\n<<<END>>>", re.S
)
WORD_RE = re.compile(r"\w+(?:[.-]\w+)*")
PAIR_RE = re.compile(
    r"<<<PAIR (?P<id>p\d+)>>>\nA \((?P<sa>\w+)\): (?P<a>.*?)\nB \((?P<sb>\w+)\): (?P<b>.*?)"
    r"\n<<<END>>>",
    re.S,
)


@dataclass
class Switches:
    unknown_theme_next: int = 0
    ignore_existing: bool = False
    prompts: list[str] = field(default_factory=list)  # every themes prompt, in order
    problems: list[Problem] = field(default_factory=lambda: list(PROBLEMS))  # what it knows


_SWITCHES: weakref.WeakKeyDictionary[object, Switches] = weakref.WeakKeyDictionary()


def switches(fake: object) -> Switches:
    if fake not in _SWITCHES:
        _SWITCHES[fake] = Switches()
    return _SWITCHES[fake]


def _space(texts: list[str]) -> np.ndarray:
    try:
        m = TfidfVectorizer(stop_words="english").fit_transform(texts)
    except ValueError:
        return np.zeros((len(texts), 1))
    return np.asarray((m @ m.T).todense())


def _top_words(text: str, n: int = 4) -> list[str]:
    words = [w for w in re.findall(r"[a-z][a-z0-9_]{3,}", text.lower())]
    return list(dict.fromkeys(words))[:n]


def _words(text: str) -> str:
    return " " + " ".join(WORD_RE.findall(text.lower())) + " "


def problem_of(text: str, problems: list[Problem]) -> str | None:
    """The known problem whose phrases the text mentions most (the fake model's insight)."""
    low = _words(text)
    hits = [(sum(_words(p) in low for p in prob.phrases), prob.name) for prob in problems]
    best = max(hits, default=(0, ""))
    return best[1] if best[0] > 0 else None


def answer_themes(fake: object, user: str) -> dict[str, Any]:
    """Items join the shown theme about their problem, else one new theme per problem."""
    sw = switches(fake)
    sw.prompts.append(user)
    themes = [m.groupdict() for m in THEME_RE.finditer(user)]
    items = [m.groupdict() for m in ITEM_RE.finditer(user)]
    owner: dict[str, str] = {}  # problem -> shown theme id
    merges = []
    for t in themes:
        problem = problem_of(f"{t['title']} {t['desc']}", sw.problems)
        if problem is None:
            continue
        if problem in owner and t["id"].startswith("T") and owner[problem].startswith("T"):
            merges.append({"theme": t["id"], "into": owner[problem]})
        else:
            owner.setdefault(problem, t["id"])
    assignments: list[dict[str, str]] = []
    new: dict[str, dict[str, str]] = {}
    for item in items:
        if sw.unknown_theme_next > 0:
            sw.unknown_theme_next -= 1
            assignments.append({"item": item["id"], "theme": "T999999"})
            continue
        text = f"{item['title']} {item['text']}"
        problem = problem_of(text, sw.problems) or f"other: {item['title']}"
        if problem in owner and not sw.ignore_existing:
            assignments.append({"item": item["id"], "theme": owner[problem]})
            continue
        if problem not in new:
            phrases = [p for p in _phrases(problem, sw.problems) if p.lower() in text.lower()]
            new[problem] = {
                "id": f"N{len(new) + 1}",
                "title": (" / ".join(phrases[:2]) or item["title"])[:80],
                "description": f"Reports about {', '.join(phrases) or item['title']}",
            }
        assignments.append({"item": item["id"], "theme": new[problem]["id"]})
    return {"assignments": assignments, "new_themes": list(new.values()), "merges": merges}


def _phrases(problem: str, problems: list[Problem]) -> tuple[str, ...]:
    return next((p.phrases for p in problems if p.name == problem), ())


def answer_duplicates(user: str) -> dict[str, Any]:
    """Confidence from the TF-IDF similarity of A and B; the reason names shared words."""
    pairs = [m.groupdict() for m in PAIR_RE.finditer(user)]
    texts = [p["a"] for p in pairs] + [p["b"] for p in pairs]
    sims = _space(texts) if texts else np.zeros((0, 0))
    out = []
    for n, p in enumerate(pairs):
        sim = float(sims[n, len(pairs) + n])
        shared = [w for w in _top_words(p["a"], 12) if w in p["b"].lower()][:3]
        reason = ("both report " + ", ".join(shared)) if shared else "different problems"
        out.append({"id": p["id"], "confidence": round(min(1.0, sim * 1.2), 3), "reason": reason})
    return {"pairs": out}


FakeGemini.responders["themes"] = lambda prompt, schema: answer_themes(prompt.fake, prompt.user)
FakeGemini.responders["duplicates"] = lambda prompt, schema: answer_duplicates(prompt.user)
FakeOpenAI.responders["themes"] = lambda fake, system, user: answer_themes(fake, user)
FakeOpenAI.responders["duplicates"] = lambda fake, system, user: answer_duplicates(user)
