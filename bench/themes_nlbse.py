"""Offline themes on real issues: each NLBSE'24 repository's 300 training issues themed alone.

Prints, per repository, the share of items in themes of at least 3, the largest theme's share,
and the five largest themes' names with their sizes (read them: would a maintainer give each
one name?). bench/themes.py calls `report` after its synthetic scale runs.

    .venv/bin/python bench/themes_nlbse.py [--csv PATH]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage.analysis.themes import local  # noqa: E402
from triage.analysis.themes.model import ThemeDoc  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared/data/nlbse24/issues_train.csv"
MIN_THEME = 3


def repositories(path: Path) -> dict[str, list[ThemeDoc]]:
    csv.field_size_limit(sys.maxsize)
    out: dict[str, list[ThemeDoc]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(fh)):
            key = f"github:{row['repo']}#{n}"
            created = datetime.fromisoformat(row["created_at"])
            out[row["repo"]].append(
                ThemeDoc(key, "github", row["title"], "", row["body"], "", created)
            )
    return out


def report(path: Path = DEFAULT_CSV) -> None:
    if not path.exists():
        print(f"(no {path}: NLBSE'24 theme figures skipped)")
        return
    for repo, docs in sorted(repositories(path).items()):
        plan = local.plan_local(docs, [], min_cluster_size=2)
        sizes = Counter(plan.assign.values())
        names = {t.ref: t.title for t in plan.new}
        big = [(ref, n) for ref, n in sizes.most_common() if n >= MIN_THEME]
        covered = sum(n for _, n in big) / len(docs)
        largest = (big[0][1] / len(docs)) if big else 0.0
        print(
            f"{repo}: {len(docs)} issues, {len(big)} themes of >= {MIN_THEME},"
            f" coverage {covered:.0%}, largest theme {largest:.0%}"
        )
        for ref, n in big[:5]:
            print(f"    {n:3d}  {names[ref]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    report(parser.parse_args().csv)


if __name__ == "__main__":
    main()
