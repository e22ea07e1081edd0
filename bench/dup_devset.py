"""The duplicates dev set: real NLBSE'24 issues as originals and distractors, plus restatements.

bench/data/duplicates_written.jsonl holds reports written for this benchmark: each `dup_of` row
restates one real issue (a row of issues_train.csv) in other words, in GitHub-issue or
Stack-Overflow-question style; `near` rows are different problems on the same topic. The real
issues are read from the NLBSE'24 file (not copied here): every restated row plus
DISTRACTORS_PER_REPO others per repository, chosen with a fixed seed.
"""

from __future__ import annotations

import csv
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
WRITTEN = HERE / "data" / "duplicates_written.jsonl"
DEFAULT_CSV = HERE.parents[1] / "shared/data/nlbse24/issues_train.csv"
DISTRACTORS_PER_REPO = 60
SEED = 24


@dataclass(frozen=True)
class DevItem:
    key: str
    source: str
    title: str
    body: str


@dataclass
class DevSet:
    items: list[DevItem]
    pairs: set[tuple[str, str]]  # (key_a, key_b) with key_a < key_b


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def load(csv_path: Path = DEFAULT_CSV) -> DevSet:
    csv.field_size_limit(sys.maxsize)
    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    written = [json.loads(line) for line in WRITTEN.read_text(encoding="utf-8").splitlines()]
    wanted = {w["dup_of"] for w in written if w["dup_of"] is not None}
    rng = random.Random(SEED)
    by_repo: dict[str, list[int]] = {}
    for n, row in enumerate(rows):
        by_repo.setdefault(row["repo"], []).append(n)
    chosen = set(wanted)
    for members in by_repo.values():
        rest = [n for n in members if n not in wanted]
        chosen.update(rng.sample(rest, min(DISTRACTORS_PER_REPO, len(rest))))
    key_of = {n: f"github:{rows[n]['repo']}#{n}" for n in chosen}
    items = [
        DevItem(key_of[n], "github", rows[n]["title"], rows[n]["body"]) for n in sorted(chosen)
    ]
    pairs: set[tuple[str, str]] = set()
    for w in written:
        repo = rows[w["dup_of"]]["repo"] if w["dup_of"] is not None else "misc/near"
        number = 90_000 + 1000 * (w["id"][0] == "n") + int(w["id"][1:])
        if w["style"] == "stackoverflow":
            key, source = f"stackexchange:stackoverflow/{number}", "stackexchange"
        else:
            key, source = f"github:{repo}#{number}", "github"
        items.append(DevItem(key, source, w["title"], w["body"]))
        if w["dup_of"] is not None:
            pairs.add(_pair(key, key_of[w["dup_of"]]))
    # Two restatements of one original are duplicates of each other too.
    by_original: dict[str, list[str]] = {}
    for a, b in pairs:
        orig, other = (a, b) if a in key_of.values() else (b, a)
        by_original.setdefault(orig, []).append(other)
    for others in by_original.values():
        for i, a in enumerate(others):
            for b in others[i + 1 :]:
                pairs.add(_pair(a, b))
    return DevSet(items, pairs)
