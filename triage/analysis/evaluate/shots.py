"""`triage eval --shots`: which training items a prompted provider sees as examples.

Prompt or train: the same test items with 0, N per label, or "all" the training items that fit
the model's context, each scored and priced beside the local model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from triage.analysis import shots
from triage.analysis.evaluate.data import EvalRow
from triage.errors import ConfigError
from triage.providers.base import Example, Taxonomy


def few_shot(
    rows: Sequence[EvalRow],
    repo: str,
    per_label: int,
    taxonomy: Taxonomy | None = None,
    shot_tokens: int = 0,
) -> list[Example]:
    """Training items as examples, the repository's own first, newest first (shots.choose)."""
    ordered = sorted(
        rows, key=lambda r: (r.repo != repo, -(r.created_at.timestamp() if r.created_at else 0))
    )
    labels = sorted({r.label for r in rows})
    categories = list(taxonomy.categories) if taxonomy else labels
    candidates = (Example(r.title, r.body, r.label, (r.label,)) for r in ordered)
    return shots.choose(candidates, categories, labels, per_label, shot_tokens)


@dataclass(frozen=True)
class Shots:
    """One `--shots` value: N examples per label, or "all" the training items that fit."""

    text: str
    per_label: int
    shot_tokens: int

    @classmethod
    def parse(cls, text: str) -> Shots:
        value = text.strip().lower()
        if value == "all":
            return cls("all", 0, ALL_SHOT_TOKENS)
        if not value.isdigit():
            raise ConfigError(f"--shots: expected numbers or 'all' (e.g. 0,3,50,all), got {text!r}")
        return cls(value, int(value), 0)


# "all" fills most of a 1M-token context window (models.toml), leaving room for the items.
ALL_SHOT_TOKENS = 800_000
