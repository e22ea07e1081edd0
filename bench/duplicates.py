"""Offline duplicates on the dev set (bench/dup_devset.py): precision and recall at the defaults.

Runs `triage duplicates --provider local` as shipped (stored word vectors, template removal per
source, neighbours kept in the database, mutual-neighbour confidence) on about 400 items in a
SQLite database: real NLBSE'24 issues, 45 restatements of some of them in GitHub and Stack
Overflow style, and near-topic distractors. Prints flagged pairs, precision, recall, the share
of true pairs whose partner is among an item's three `related` neighbours, and the figures at a
few other confidence thresholds.

    .venv/bin/python bench/duplicates.py [--csv PATH] [--show]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import dup_devset  # noqa: E402
from sqlalchemy import select  # noqa: E402

from triage.analysis.duplicates import local  # noqa: E402
from triage.analysis.duplicates import run as dups  # noqa: E402
from triage.config import ThemesConfig  # noqa: E402
from triage.db import migrate, related, store  # noqa: E402
from triage.db.engine import make_engine, session_factory, transaction  # noqa: E402
from triage.db.schema import Duplicate  # noqa: E402
from triage.sources.base import ItemIn  # noqa: E402

START = datetime(2025, 5, 5)


def as_item(n: int, item: dup_devset.DevItem) -> ItemIn:
    scope, _, number = item.key.split(":", 1)[1].replace("#", "/").rpartition("/")
    created = START + timedelta(minutes=n)
    return ItemIn(
        key=item.key,
        source=item.source,  # type: ignore[arg-type]
        scope=scope,
        number=int(number),
        url=f"https://example.org/{n}",
        title=item.title,
        body=item.body,
        state="open",
        created_at=created,
        updated_at=created,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=dup_devset.DEFAULT_CSV)
    parser.add_argument("--show", action="store_true", help="print the flagged pairs")
    args = parser.parse_args()
    dev = dup_devset.load(args.csv)
    defaults = ThemesConfig()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'dups.db'}")
        migrate.upgrade(engine)
        sessions = session_factory(engine)
        with transaction(sessions) as s:
            store.upsert_items(s, [as_item(n, i) for n, i in enumerate(dev.items)])
        # Every pair is kept (confidence 0) so the other thresholds can be read off one run.
        settings = dups.Settings(
            defaults.duplicate_neighbours, defaults.duplicate_min_similarity, 0
        )
        dups.run_duplicates(sessions, settings, local.judge_offline, "local", "tfidf")
        with sessions() as s:
            links = list(s.scalars(select(Duplicate)))
            near = related.lists(s, [i.key for i in dev.items])
        engine.dispose()
    print(f"{len(dev.items)} items, {len(dev.pairs)} true pairs")
    for threshold in sorted({defaults.duplicate_min_confidence, 0.6, 0.8, 0.9}):
        flagged = {(x.key_a, x.key_b) for x in links if x.confidence >= threshold}
        hits = len(flagged & dev.pairs)
        mark = " (default)" if threshold == defaults.duplicate_min_confidence else ""
        print(
            f"min confidence {threshold:.2f}{mark}: {len(flagged)} flagged,"
            f" precision {hits / max(len(flagged), 1):.2f}, recall {hits / len(dev.pairs):.2f}"
        )

    def among(a: str, b: str) -> bool:
        return b in {k for k, _ in near.get(a, [])[: related.PER_ITEM]}

    top3 = sum(among(a, b) or among(b, a) for a, b in dev.pairs)
    print(f"true partner among the 3 related neighbours: {top3 / len(dev.pairs):.2f}")
    if args.show:
        for x in sorted(links, key=lambda x: -x.confidence):
            if x.confidence >= defaults.duplicate_min_confidence:
                ok = "+" if (x.key_a, x.key_b) in dev.pairs else "-"
                print(f"{ok} {x.confidence:.2f} {x.key_a} {x.key_b}: {x.reason}")


if __name__ == "__main__":
    main()
