"""`triage eval --split`: a stratified split keeps every label in the test set."""

from __future__ import annotations

from datetime import datetime, timedelta

from triage.analysis.evaluate.data import EvalRow
from triage.analysis.evaluate.split import small_labels, split

T0 = datetime(2024, 1, 1)


def _rows() -> list[EvalRow]:
    """40 bugs over the whole period, and 10 questions that all came early."""
    bugs = [EvalRow("r", T0 + timedelta(days=i), "bug", f"b{i}", "", f"b{i}") for i in range(40)]
    asks = [
        EvalRow("r", T0 + timedelta(hours=i), "question", f"q{i}", "", f"q{i}") for i in range(10)
    ]
    return bugs + asks


def test_a_time_split_can_leave_a_label_out_of_the_test_set() -> None:
    _, test, how = split(_rows(), "time", 0.8)
    assert {r.label for r in test} == {"bug"} and "creation time" in how


def test_the_stratified_split_tests_each_label_on_its_newest_items() -> None:
    train, test, how = split(_rows(), "stratified", 0.8)
    assert sorted((r.label, r.key) for r in test if r.label == "question") == [
        ("question", "q8"),
        ("question", "q9"),
    ]
    assert sum(r.label == "bug" for r in test) == 8 and len(train) == 40
    assert "stratified" in how
    for label in ("bug", "question"):  # nothing in training is newer than a test item of its label
        newest = max(r.created_at for r in train if r.label == label)
        assert all(r.created_at > newest for r in test if r.label == label)
    assert small_labels(test) == {"question": 2, "bug": 8}
