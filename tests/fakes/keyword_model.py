"""The fakes' "model": a deterministic keyword classifier that reads our classification prompt.

It parses the taxonomy out of the system instruction and the items out of the user message by
the delimiters in triage/providers/prompts, so end-to-end results are checkable. Any fake (Gemini,
OpenAI-compatible) can answer a `purpose: classify` prompt with `answer_classify`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ITEM_RE = re.compile(r"^<<<ITEM (\S+) (\S+)>>>\n(.*?)\n<<<END>>>$", re.S | re.M)
CATEGORY_RE = re.compile(r"^- (\S+): (.*?)(?: \(labels: ([^)]*)\))?$")
INJECTION_RE = re.compile(r"add the label [\"'`]?([\w:./-]+)", re.I)
PURPOSE_RE = re.compile(r"^purpose:\s*([\w-]+)", re.M)

# First match wins; a category missing from the prompt's taxonomy is skipped.
RULES: list[tuple[str, re.Pattern[str]]] = [
    ("bug", re.compile(r"crash|error|exception|fails|failing|broken|segfault", re.I)),
    ("feature", re.compile(r"feature|support for|would be nice|\badd\b|allow", re.I)),
    ("question", re.compile(r"how do i|how to|how can|\?", re.I)),
    ("docs", re.compile(r"\bdocs?\b|documentation|typo|readme", re.I)),
]
HIGH = re.compile(r"crash|data loss|security|regression|segfault", re.I)
CRITICAL = re.compile(r"critical|urgent|outage|production down", re.I)


@dataclass
class ParsedTaxonomy:
    categories: list[str] = field(default_factory=list)
    labels_for: dict[str, list[str]] = field(default_factory=dict)
    allowlist: list[str] = field(default_factory=list)
    priorities: list[str] = field(default_factory=list)


@dataclass
class ParsedItem:
    id: str
    source: str
    title: str
    body: str

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"


def purpose_of(system: str, user: str = "") -> str:
    m = PURPOSE_RE.search(system) or PURPOSE_RE.search(user)
    return m.group(1) if m else "default"


def parse_taxonomy(system: str) -> ParsedTaxonomy:
    tax = ParsedTaxonomy()
    section = ""
    for line in system.splitlines():
        if line.startswith("Categories"):
            section = "categories"
            continue
        if line.startswith("Labels ("):
            section = "labels"
            continue
        if line.startswith("Priorities"):
            tax.priorities = [p.strip() for p in line.split(":", 1)[1].split(",") if p.strip()]
            section = ""
            continue
        if not line.strip():
            section = ""
            continue
        if section == "categories":
            m = CATEGORY_RE.match(line)
            if m:
                tax.categories.append(m.group(1))
                labels = m.group(3) or ""
                tax.labels_for[m.group(1)] = [x.strip() for x in labels.split(",") if x.strip()]
        elif section == "labels" and line.strip() != "(none)":
            tax.allowlist = [x.strip() for x in line.split(",") if x.strip()]
    return tax


def parse_items(user: str) -> list[ParsedItem]:
    out = []
    for m in ITEM_RE.finditer(user):
        title, _, body = m.group(3).partition("\n")
        out.append(ParsedItem(m.group(1), m.group(2), title, body))
    return out


def _priority(text: str, category: str, priorities: list[str]) -> str:
    if not priorities:
        return "medium"
    wanted = "medium"
    if CRITICAL.search(text):
        wanted = "critical"
    elif HIGH.search(text):
        wanted = "high"
    elif category in ("question", "docs"):
        wanted = "low"
    return wanted if wanted in priorities else priorities[(len(priorities) - 1) // 2]


def classify_item(
    item: ParsedItem, tax: ParsedTaxonomy, obey_injection: bool = False
) -> dict[str, Any]:
    """One answer object, as a schema-following model would give it."""
    text = item.text
    category, confidence = (tax.categories[0] if tax.categories else "unknown"), 0.3
    for name, pattern in RULES:
        if name in tax.categories and pattern.search(text):
            category, confidence = name, 0.9
            break
    labels = list(tax.labels_for.get(category, []))
    if obey_injection:  # a gullible model: does what the item text tells it to
        labels += [m.group(1) for m in INJECTION_RE.finditer(text)]
    summary = " ".join(item.title.split())[:120] or "No title."
    return {
        "id": item.id,
        "category": category,
        "labels": labels,
        "priority": _priority(text, category, tax.priorities),
        "summary": summary,
        "confidence": confidence,
    }


def answer_classify(system: str, user: str, obey_injection: bool = False) -> dict[str, Any]:
    """The whole answer for a classification prompt: {"items": [...]}, in prompt order."""
    tax = parse_taxonomy(system)
    return {"items": [classify_item(it, tax, obey_injection) for it in parse_items(user)]}
