"""Which human-labelled examples go into the shared (cached) prefix of a classification prompt.

`[llm] few_shot_per_category` is a floor per category; `[llm] shot_tokens` fills the prefix
up to that many tokens with more of the repository's own history, newest first, after making
sure every allowlisted label is shown at least once. Near-identical items count once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from triage.providers.base import Example
from triage.providers.prompts import example_tokens


def _fingerprint(ex: Example) -> str:
    text = " ".join(f"{ex.title} {ex.body[:400]}".lower().split())
    return hashlib.sha1(text.encode()).hexdigest()


def choose(
    candidates: Iterable[Example],
    categories: Sequence[str],
    labels: Sequence[str],
    per_category: int,
    shot_tokens: int,
) -> list[Example]:
    """Examples from `candidates` (best first: own scope, newest), in that order.

    Picks the floor (`per_category` per category), then one example for each allowlisted
    label not yet shown, then more examples in order while they fit `shot_tokens` in total.
    """
    pool: list[Example] = []
    seen: set[str] = set()
    floor: dict[str, int] = {}
    for ex in candidates:
        fp = _fingerprint(ex)
        if fp not in seen:
            seen.add(fp)
            pool.append(ex)
            floor[ex.category] = floor.get(ex.category, 0) + 1
        if shot_tokens == 0 and all(floor.get(c, 0) >= per_category for c in categories):
            break  # the floor alone is wanted and it is full: read no further
    picked: set[int] = set()
    per: dict[str, int] = {}
    for i, ex in enumerate(pool):
        if ex.category in categories and per.get(ex.category, 0) < per_category:
            per[ex.category] = per.get(ex.category, 0) + 1
            picked.add(i)
    if shot_tokens > 0:
        shown = {lb for i in picked for lb in pool[i].labels}
        for label in labels:
            if label in shown:
                continue
            first = next((i for i, ex in enumerate(pool) if label in ex.labels), None)
            if first is not None:
                picked.add(first)
                shown |= set(pool[first].labels)
        used = sum(example_tokens(pool[i]) for i in picked)
        for i, ex in enumerate(pool):
            if i in picked:
                continue
            cost = example_tokens(ex)
            if used + cost > shot_tokens:
                continue
            picked.add(i)
            used += cost
    return [pool[i] for i in sorted(picked)]
