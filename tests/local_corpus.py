"""Made-up labelled issues for the local provider and `triage eval` tests.

Each category has its own phrases and every issue shares filler words with all the others, so
a classifier must learn the phrases; with `noise=0` the categories are perfectly separable.
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

from triage.sources.base import ItemIn

T0 = datetime(2024, 1, 1, 9, 0)
CATEGORY_LABEL = {"bug": "bug", "feature": "enhancement", "question": "question"}

PHRASES = {
    "bug": [
        "crashes when opening",
        "throws an exception",
        "segfault in",
        "regression since the last release",
        "fails with a traceback",
        "broken after upgrading",
    ],
    "feature": [
        "please add support for",
        "it would be nice to have",
        "feature request for",
        "new option to configure",
        "proposal to introduce",
        "allow users to choose",
    ],
    "question": [
        "how do i set up",
        "is it possible to use",
        "what is the best way to",
        "can someone explain",
        "why does the documentation say",
        "any hint on using",
    ],
}
FILLER = ["config", "server", "window", "build", "plugin", "widget", "cache", "render", "module"]


def text(category: str, rng: random.Random) -> tuple[str, str]:
    phrases = PHRASES[category]
    title = f"{rng.choice(phrases)} {rng.choice(FILLER)}"
    sentences = [
        f"The {rng.choice(FILLER)} {rng.choice(phrases)} the {rng.choice(FILLER)}."
        for _ in range(rng.randint(2, 3))
    ]
    sentences.append(f"We use the {rng.choice(FILLER)} and the {rng.choice(FILLER)} daily.")
    return title, " ".join(sentences)


def rows(
    n_per_category: int, repo: str = "acme/app", seed: int = 0, noise: float = 0.0
) -> list[dict[str, str]]:
    """NLBSE-format rows (repo, created_at, label, title, body), interleaved in time."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_per_category):
        for category in PHRASES:
            said = category
            if noise and rng.random() < noise:
                said = rng.choice([c for c in PHRASES if c != category])
            title, body = text(said, rng)
            created = T0 + timedelta(hours=len(out))
            out.append(
                {
                    "repo": repo,
                    "created_at": created.isoformat(sep=" "),
                    "label": category,
                    "title": title,
                    "body": body,
                }
            )
    return out


def write_csv(path: Path, data: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["repo", "created_at", "label", "title", "body"])
        writer.writeheader()
        writer.writerows(data)
    return path


def items(
    n_per_category: int,
    scope: str = "acme/app",
    seed: int = 0,
    labelled: bool = True,
    start: int = 1,
) -> list[ItemIn]:
    """GitHub issues of `scope`, labelled with the default `[labels] map` labels (or not)."""
    out = []
    for n, row in enumerate(rows(n_per_category, scope, seed), start=start):
        created = datetime.fromisoformat(row["created_at"]) + timedelta(minutes=start)
        out.append(
            ItemIn(
                key=f"github:{scope}#{n}",
                source="github",
                scope=scope,
                number=n,
                url=f"https://github.com/{scope}/issues/{n}",
                title=row["title"],
                body=row["body"],
                labels=[CATEGORY_LABEL[row["label"]]] if labelled else [],
                created_at=created,
                updated_at=created,
            )
        )
    return out
