"""What every provider's raw answer goes through before anything is stored."""

from __future__ import annotations

import pytest

from triage.config import Config
from triage.providers.base import Taxonomy, validate_answers

IDS = {"i1": "github:o/r#1", "i2": "github:o/r#2", "i3": "github:o/r#3"}


def taxonomy(priorities: list[str] | None = None) -> Taxonomy:
    raw = {"taxonomy": {"priorities": priorities}} if priorities else {}
    return Taxonomy.from_config(Config.model_validate(raw))


def answer(item_id: str, **fields: object) -> dict[str, object]:
    return {"id": item_id, "category": "bug", "summary": "s", "confidence": 0.8, **fields}


def test_each_id_once_unknown_ids_ignored_bad_categories_asked_again() -> None:
    raw = {
        "items": [
            answer("i1"),
            answer("i1", category="feature"),  # answered twice: the first answer wins
            answer("i9"),  # never asked about
            answer("i2", category="security"),  # not a category: no answer at all
            {"id": "i3"},  # not an answer object
        ]
    }
    got = validate_answers(raw, IDS, taxonomy())
    assert [(r.key, r.category) for r in got.results] == [("github:o/r#1", "bug")]
    assert (got.duplicates, got.unknown, got.missing) == (1, 1, ["i2", "i3"])


def test_labels_outside_the_allowlist_are_dropped_and_counted() -> None:
    raw = [answer("i1", labels=["bug", "security-critical", "bug"])]
    got = validate_answers(raw, IDS, taxonomy())
    [result] = got.results
    assert result.labels == ["bug"] and result.dropped == ["security-critical"]
    assert got.dropped == 1


@pytest.mark.parametrize(
    ("priorities", "middle"),
    [
        (["low", "medium", "high", "critical"], "medium"),
        (["low", "medium", "high"], "medium"),
        (["p3", "p2", "p1", "p0", "urgent"], "p1"),
        (["normal"], "normal"),
    ],
)
def test_an_unknown_priority_becomes_the_middle_one(priorities: list[str], middle: str) -> None:
    got = validate_answers([answer("i1", priority="ASAP")], IDS, taxonomy(priorities))
    [result] = got.results
    assert result.priority == middle and result.dropped == ["priority:ASAP"]


def test_an_answer_that_is_not_a_list_of_items_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a list"):
        validate_answers({"answers": []}, IDS, taxonomy())
