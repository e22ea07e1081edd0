"""Offline duplicates on the dev set (bench/dup_devset.py): precision and recall at the defaults.

Runs the same steps as `triage duplicates --provider local` (template removal per source,
TF-IDF, neighbours, mutual-neighbour confidence) on about 400 items: real NLBSE'24 issues, 45
restatements of some of them in GitHub and Stack Overflow style, and near-topic distractors.
Prints flagged pairs, precision, recall, the share of true pairs whose partner is among an item's
three `related` neighbours, and the figures at a few other confidence thresholds.

    .venv/bin/python bench/duplicates.py [--csv PATH] [--show]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import dup_devset  # noqa: E402

from triage.analysis.duplicates import local  # noqa: E402
from triage.analysis.duplicates.model import DupDoc  # noqa: E402
from triage.config import ThemesConfig  # noqa: E402
from triage.db import related  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=dup_devset.DEFAULT_CSV)
    parser.add_argument("--show", action="store_true", help="print the flagged pairs")
    args = parser.parse_args()
    dev = dup_devset.load(args.csv)
    docs = [DupDoc(i.key, i.source, i.title, "", i.body, "") for i in dev.items]
    defaults = ThemesConfig()
    space = local.tfidf_space(docs)
    near = local.nearest(space.matrix, max(defaults.duplicate_neighbours, related.PER_ITEM))
    links = local.judge_offline(local.offline_candidates(space, docs, near)).links
    print(f"{len(docs)} items, {len(dev.pairs)} true pairs")
    for threshold in sorted({defaults.duplicate_min_confidence, 0.6, 0.8, 0.9}):
        flagged = {(x.key_a, x.key_b) for x in links if x.confidence >= threshold}
        hits = len(flagged & dev.pairs)
        mark = " (default)" if threshold == defaults.duplicate_min_confidence else ""
        print(
            f"min confidence {threshold:.2f}{mark}: {len(flagged)} flagged,"
            f" precision {hits / max(len(flagged), 1):.2f}, recall {hits / len(dev.pairs):.2f}"
        )
    index = {d.key: n for n, d in enumerate(docs)}
    top3 = sum(
        index[b] in {j for j, _ in near[index[a]][: related.PER_ITEM]}
        or index[a] in {j for j, _ in near[index[b]][: related.PER_ITEM]}
        for a, b in dev.pairs
    )
    print(f"true partner among the 3 related neighbours: {top3 / len(dev.pairs):.2f}")
    if args.show:
        for x in sorted(links, key=lambda x: -x.confidence):
            if x.confidence >= defaults.duplicate_min_confidence:
                ok = "+" if (x.key_a, x.key_b) in dev.pairs else "-"
                print(f"{ok} {x.confidence:.2f} {x.key_a} {x.key_b}: {x.reason}")


if __name__ == "__main__":
    main()
