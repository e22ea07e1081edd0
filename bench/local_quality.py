"""Quality of the local provider on the NLBSE'24 issue-classification training file.

Cross-validation, as the benchmark's test split is not public here: per repository, stratified
k-fold over its 300 issues; each fold's model is trained the way the local provider trains a
repository's model (every other repository's issues pooled, the target's own training folds
marked as its own) and scored with macro-F1 on the held-out fold. Prints per-repository means
with the spread over folds, the mean across repositories per seed, and the time to train and
predict on 1,500 issues.

    .venv/bin/python bench/local_quality.py [--csv PATH] [--folds 5] [--seeds 3] [--alone]

Published test-split figures for comparison: fastText 0.718, RoBERTa 0.792, SetFit 0.827.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from triage.analysis.evaluate.data import EvalRow, read_csv
from triage.providers.local.model import TrainingSet, train

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared/data/nlbse24/issues_train.csv"


def fold_scores(rows: list[EvalRow], folds: int, seed: int, alone: bool) -> dict[str, list[float]]:
    """Macro-F1 of every held-out fold, per repository."""
    by_repo: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_repo[row.repo].append(i)
    labels = np.array([r.label for r in rows])
    out: dict[str, list[float]] = {}
    for repo, members in sorted(by_repo.items()):
        idx = np.array(members)
        others = [] if alone else [i for i in range(len(rows)) if rows[i].repo != repo]
        split = StratifiedKFold(folds, shuffle=True, random_state=seed)
        out[repo] = []
        for train_pos, test_pos in split.split(idx, labels[idx]):
            train_idx = [*idx[train_pos].tolist(), *others]
            data = TrainingSet(
                docs=[rows[i].doc for i in train_idx],
                labels=[rows[i].label for i in train_idx],
                own=[rows[i].repo == repo for i in train_idx],
            )
            model = train(data, calibrate=False, seed=seed)
            test = idx[test_pos]
            pred = model.predict([rows[i].doc for i in test])
            out[repo].append(float(f1_score(labels[test], pred, average="macro")))
    return out


def timing(rows: list[EvalRow]) -> tuple[float, float]:
    """Seconds to train one calibrated repository model on every row, and to predict all rows."""
    repo = rows[0].repo
    data = TrainingSet(
        [r.doc for r in rows], [r.label for r in rows], [r.repo == repo for r in rows]
    )
    started = time.perf_counter()
    model = train(data, calibrate=True)
    trained = time.perf_counter() - started
    started = time.perf_counter()
    model.predict_proba([r.doc for r in rows])
    return trained, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--alone", action="store_true", help="train on the repository alone")
    args = parser.parse_args()
    if not args.csv.exists():
        print(f"skipped: {args.csv} not found (the NLBSE'24 training file is not shipped)")
        return 0
    rows = read_csv(args.csv)
    print(
        f"{len(rows)} issues, {len({r.repo for r in rows})} repositories, {args.folds}-fold CV,"
        f" {args.seeds} seeds, {'repository alone' if args.alone else 'pooled + own features'}"
    )
    per_repo: dict[str, list[float]] = defaultdict(list)
    means = []
    for seed in range(args.seeds):
        started = time.perf_counter()
        scores = fold_scores(rows, args.folds, seed, args.alone)
        for repo, values in scores.items():
            per_repo[repo] += values
        mean = statistics.mean(statistics.mean(v) for v in scores.values())
        means.append(mean)
        print(f"seed {seed}: mean macro-F1 {mean:.4f} ({time.perf_counter() - started:.0f} s)")
    print(f"{'repository':<24} {'macro-F1':>8} {'sd(folds)':>9}")
    for repo, values in sorted(per_repo.items()):
        print(f"{repo:<24} {statistics.mean(values):>8.4f} {statistics.stdev(values):>9.4f}")
    spread = statistics.stdev(means) if len(means) > 1 else 0.0
    mean = statistics.mean(means)
    print(f"{'mean over repositories':<24} {mean:>8.4f} {spread:>9.4f} (sd over seeds)")
    trained, predicted = timing(rows)
    print(
        f"train one calibrated model on {len(rows)} issues: {trained:.1f} s;"
        f" predict {len(rows)}: {predicted:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
