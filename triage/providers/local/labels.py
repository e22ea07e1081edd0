"""What a human's repository labels mean as a category, by `[labels] map` (for training)."""

from __future__ import annotations

from collections.abc import Sequence

from triage.config import Config


def label_to_category(config: Config) -> dict[str, str]:
    """Repository label -> category, from `[labels] map` (lower-cased: GitHub ignores case)."""
    return {lb.lower(): cat for cat, labels in config.labels.map.items() for lb in labels}


def category_of(labels: Sequence[str], mapping: dict[str, str]) -> str | None:
    """The one category a human's labels mean, or None (unlabelled, or labels that disagree)."""
    cats = {mapping[lb.lower()] for lb in labels if lb.lower() in mapping}
    return cats.pop() if len(cats) == 1 else None
