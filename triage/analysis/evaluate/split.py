"""How `triage eval --source` splits labelled items, and which labels have too few to judge.

A time split tests on the newest items; on a repository whose newest labels are nearly all one
class it leaves other labels with one test item each, and macro-F1 then measures luck. The
stratified split keeps every label's share in both parts, still testing on each label's
newest items, so no test item predates the training items of its own label.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime

from triage.analysis.evaluate.data import EvalRow, time_split
from triage.errors import ConfigError, TriageError

SPLITS = ("stratified", "time")
MIN_TEST_ITEMS = 10  # fewer test items than this for a label: its F1 is noise, say so


def stratified_split(
    rows: Sequence[EvalRow], train_share: float = 0.8
) -> tuple[list[EvalRow], list[EvalRow]]:
    """Per label, the oldest `train_share` trains and the newest rest tests (at least one each
    where a label has two items or more)."""
    if not 0 < train_share < 1:
        raise ConfigError("the train share must be between 0 and 1")
    by_label: dict[str, list[EvalRow]] = defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    train: list[EvalRow] = []
    test: list[EvalRow] = []
    for group in by_label.values():
        group.sort(key=lambda r: (r.created_at or datetime.min, r.key))
        n_test = min(len(group) - 1, max(1, math.ceil(len(group) * (1 - train_share))))
        cut = len(group) - n_test
        train += group[:cut]
        test += group[cut:]
    if not train or not test:
        raise TriageError("a split needs at least two labelled items of one label")
    return train, test


def split(
    rows: Sequence[EvalRow], how: str, train_share: float
) -> tuple[list[EvalRow], list[EvalRow], str]:
    """The split `--split` names, and how the output describes it."""
    if how == "time":
        train, test = time_split(rows, train_share)
        return train, test, f"split by creation time ({len(train)} older / {len(test)} newer)"
    if how != "stratified":
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {how!r}")
    train, test = stratified_split(rows, train_share)
    return (
        train,
        test,
        (
            f"stratified split by label, newest of each for testing ({len(train)} train /"
            f" {len(test)} test)"
        ),
    )


def small_labels(test: Sequence[EvalRow], minimum: int = MIN_TEST_ITEMS) -> dict[str, int]:
    """Labels with fewer than `minimum` test items, fewest first."""
    counts = Counter(r.label for r in test)
    return dict(sorted(((k, n) for k, n in counts.items() if n < minimum), key=lambda x: x[1]))


def warning(small: dict[str, int], minimum: int = MIN_TEST_ITEMS) -> str:
    """One line naming the labels whose scores rest on too few test items."""
    named = ", ".join(f"{label} {n} test item{'s' if n != 1 else ''}" for label, n in small.items())
    return (
        f"warning: fewer than {minimum} test items for {named}: their F1 (and the macro-F1)"
        " rest on too few items to compare providers"
    )
