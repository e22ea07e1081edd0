"""`triage eval` scoring: macro-F1 as sklearn computes it, thresholds, time splits, CSV errors."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sklearn.metrics import f1_score, precision_score

from tests.local_corpus import rows, write_csv
from triage.analysis.evaluate.data import EvalRow, read_csv, time_split
from triage.analysis.evaluate.report import reliability_points, render, to_json
from triage.analysis.evaluate.run import Prediction, choose_threshold, repo_scores, summarise
from triage.errors import ConfigError, TriageError


def preds(pairs: list[tuple[str, str]], repo: str = "r") -> list[Prediction]:
    return [Prediction(f"k{i}", repo, t, p, 0.5) for i, (t, p) in enumerate(pairs)]


def test_macro_f1_and_confusion_match_sklearn_on_fixed_predictions() -> None:
    rng = random.Random(3)
    labels = ["bug", "feature", "question"]
    truth = [rng.choice(labels) for _ in range(200)]
    predicted = [t if rng.random() < 0.7 else rng.choice(labels) for t in truth]
    scores = repo_scores("r", preds(list(zip(truth, predicted, strict=True))))
    assert scores.macro_f1 == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert scores.labels["bug"].precision == pytest.approx(
        precision_score(truth, predicted, labels=["bug"], average="macro")
    )
    assert scores.confusion[0][0] == sum(
        t == p == "bug" for t, p in zip(truth, predicted, strict=True)
    )
    assert sum(map(sum, scores.confusion)) == 200


def test_unanswered_items_count_as_misses_without_adding_a_label() -> None:
    scores = repo_scores("r", preds([("bug", "bug"), ("bug", ""), ("feature", "feature")]))
    assert scores.label_order == ["bug", "feature"]
    assert scores.labels["bug"].recall == 0.5
    assert scores.labels["bug"].precision == 1.0
    assert scores.macro_f1 == pytest.approx((2 / 3 + 1.0) / 2)


def test_confusion_rows_hold_every_item_whatever_was_predicted() -> None:
    pairs = [("bug", "bug"), ("bug", "question"), ("bug", ""), ("feature", "feature")]
    report = summarise("p", "m", preds(pairs), 0.9, [], 0.0, 0.0)
    scores = report.per_repo["r"]
    assert scores.confusion_labels == ["bug", "feature", "question", "(no answer)"]
    assert scores.confusion[0] == [1, 0, 1, 1]  # bug: right, called a question, unanswered
    assert [sum(row) for row in scores.confusion] == [3, 1, 0, 0]
    assert to_json([report], {})["providers"][0]["per_repo"]["r"]["confusion"] == {
        "labels": scores.confusion_labels,
        "matrix": scores.confusion,
    }
    console = Console(width=200, record=True)
    render(console, [report], {})
    table = console.export_text()
    assert re.search(r"│ bug\s+│\s+1 │\s+0 │\s+1 │\s+1 │", table), table


def test_reliability_bins_carry_their_item_counts() -> None:
    data = [Prediction(f"k{i}", "r", "bug", "bug", 0.95) for i in range(9)]
    data += [Prediction("k9", "r", "bug", "feature", 0.95)]
    data += [Prediction("lone", "r", "bug", "feature", 0.35)]
    data += [Prediction("none", "r", "bug", "", None)]  # unanswered: no confidence to plot
    report = summarise("p", "m", data, 0.9, [], 0.0, 0.0)
    assert reliability_points(report) == [
        pytest.approx((0.35, 0.0, 1)),
        pytest.approx((0.95, 0.9, 10)),
    ]


def test_mean_f1_is_the_mean_of_per_repository_macro_f1() -> None:
    a = preds([("bug", "bug"), ("feature", "feature")], repo="a")  # 1.0
    b = preds([("bug", "feature"), ("feature", "bug")], repo="b")  # 0.0
    report = summarise("local", "m", a + b, 0.9, [], 0.0, 0.0)
    assert report.per_repo["a"].macro_f1 == 1.0
    assert report.per_repo["b"].macro_f1 == 0.0
    assert report.mean_f1 == 0.5


def test_threshold_is_the_lowest_confidence_meeting_the_target() -> None:
    rng = random.Random(7)
    data = []
    for i in range(300):
        conf = rng.random()
        right = rng.random() < conf  # higher confidence, more often right
        data.append(Prediction(f"k{i}", "r", "bug" if right else "feature", "bug", conf))
    for target in (0.6, 0.8, 0.9):
        t = choose_threshold("bug", data, target)
        assert t.threshold is not None
        kept = [p for p in data if p.confidence is not None and p.confidence >= t.threshold]
        precision = sum(p.truth == "bug" for p in kept) / len(kept)
        assert precision >= target
        assert t.precision == pytest.approx(precision)
        assert t.coverage == pytest.approx(len(kept) / len(data))
        # every lower threshold misses the target
        for lower in sorted({p.confidence for p in data if p.confidence < t.threshold})[-20:]:
            below = [p for p in data if p.confidence >= lower]
            assert sum(p.truth == "bug" for p in below) / len(below) < target


def test_unreachable_target_gives_no_threshold() -> None:
    data = [Prediction(f"k{i}", "r", "feature", "bug", 0.9) for i in range(5)]
    t = choose_threshold("bug", data, 0.9)
    assert t.threshold is None
    assert t.coverage == 0.0


def test_time_split_never_trains_on_items_as_new_as_the_test_items() -> None:
    t0 = datetime(2024, 1, 1)
    data = [
        EvalRow("r", t0 + timedelta(days=i // 3), "bug", f"t{i}", "", key=f"k{i}")
        for i in range(30)
    ]
    random.Random(1).shuffle(data)
    train, test = time_split(data, 0.8)
    assert max(r.created_at for r in train) < min(r.created_at for r in test)  # type: ignore[type-var]
    assert len(train) + len(test) == 30
    assert 20 <= len(train) <= 24  # ties at the boundary move to the test side


def test_time_split_with_one_instant_is_refused() -> None:
    t0 = datetime(2024, 1, 1)
    with pytest.raises(TriageError, match="same creation time"):
        time_split([EvalRow("r", t0, "bug", "t", "", key=f"k{i}") for i in range(5)])


def test_csv_without_a_required_column_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("repo,title,body\nx,y,z\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"missing column.*created_at, label"):
        read_csv(path)


def test_csv_reads_long_bodies(tmp_path: Path) -> None:
    data = rows(2)
    data[0]["body"] = "log line\n" * 40_000  # beyond csv's 128 KiB default field limit
    got = read_csv(write_csv(tmp_path / "a.csv", data))
    assert len(got) == 6
    assert got[0].body.count("log line") == 40_000


def test_json_puts_the_first_providers_figures_on_top() -> None:
    a = summarise("local", "m1", preds([("bug", "bug"), ("feature", "bug")], "x"), 0.9, [], 0, 0)
    b = summarise(
        "openai", "m2", preds([("bug", "bug"), ("feature", "feature")], "x"), 0.9, [], 0, 0
    )
    out = to_json([a, b], {"test_size": 2})
    assert out["provider"] == "local"
    assert out["mean_f1"] == round(a.mean_f1, 4)
    assert out["per_repo"] == {"x": round(a.per_repo["x"].macro_f1, 4)}
    assert [p["provider"] for p in out["providers"]] == ["local", "openai"]
    assert out["providers"][1]["mean_f1"] == 1.0
    assert out["providers"][1]["per_repo"]["x"]["confusion"]["matrix"] == [[1, 0], [0, 1]]


def test_training_data_with_one_label_is_refused_clearly() -> None:
    from triage.analysis.evaluate.run import evaluate
    from triage.config import Config

    data = [EvalRow("r", None, "bug", f"t{i}", "b", key=f"k{i}") for i in range(5)]
    with pytest.raises(TriageError, match="fewer than two labels"):
        evaluate(Config(), data, data, ["local"], lambda name: None)  # type: ignore[arg-type,return-value]


def test_local_eval_answers_with_the_model_production_would_use(tmp_path: Path) -> None:
    """Own model with enough labels, else the pooled one, else rules: as `triage analyze`."""
    from triage.analysis.evaluate.run import evaluate
    from triage.config import Config

    def csv_rows(name: str, data: list[dict[str, str]]) -> list[EvalRow]:
        return read_csv(write_csv(tmp_path / name, data))

    train = csv_rows("train.csv", rows(12, "big/one", seed=1) + rows(3, "small/two", seed=2))
    test = csv_rows("test.csv", rows(2, "big/one", seed=3) + rows(2, "small/two", seed=4))
    (report,) = evaluate(Config(), train, test, ["local"], lambda name: None)  # type: ignore[arg-type,return-value]
    notes = {(p.repo, (p.note or "own").split(":")[0]) for p in report.predictions}
    assert notes == {("big/one", "own"), ("small/two", "pooled model")}

    tiny = csv_rows("tiny.csv", rows(3, "small/two", seed=2))
    (report,) = evaluate(Config(), tiny, test, ["local"], lambda name: None)  # type: ignore[arg-type,return-value]
    assert report.notes == {"rules": len(test)}
    console = Console(width=200, record=True)
    render(console, [report], {})
    assert f"local: of {len(test)} items, {len(test)} by the rules" in console.export_text()


def test_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "excel.csv", rows(1))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    got = read_csv(path)
    assert [r.repo for r in got] == ["acme/app"] * 3
