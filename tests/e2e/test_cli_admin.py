from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

from triage.db import store
from triage.db.engine import make_engine, session_factory, transaction
from triage.db.schema import Analysis, Duplicate, Theme, ThemeItem
from triage.sources.base import ItemIn

from .cli import run_triage


def _seed(db: Path) -> None:
    engine = make_engine(f"sqlite:///{db}")
    sessions = session_factory(engine)
    t = datetime(2025, 3, 1)
    with transaction(sessions) as s:
        store.upsert_items(
            s,
            [
                ItemIn(
                    key="github:o/r#1",
                    source="github",
                    scope="o/r",
                    number=1,
                    url="https://github.com/o/r/issues/1",
                    title="Crash on start",
                    body="boom",
                    labels=["bug"],
                    created_at=t,
                    updated_at=t,
                ),
                ItemIn(
                    key="stackexchange:stackoverflow/9",
                    source="stackexchange",
                    scope="stackoverflow",
                    number=9,
                    url="https://stackoverflow.com/q/9",
                    title="How to start?",
                    body="?",
                    tags=["x"],
                    created_at=t,
                    updated_at=t,
                ),
            ],
        )
        s.add(
            Analysis(
                item_key="github:o/r#1",
                content_hash=ItemIn(
                    key="k",
                    source="github",
                    scope="o/r",
                    number=1,
                    url="u",
                    title="Crash on start",
                    body="boom",
                    created_at=t,
                    updated_at=t,
                ).content_hash,
                provider="local",
                model="m",
                prompt_version="1",
                category="bug",
                labels=["bug"],
                priority="high",
                summary="It crashes.",
                confidence=0.9,
                created_at=t,
            )
        )
        theme = Theme(title="Start-up crashes", created_at=t, updated_at=t)
        s.add(theme)
        s.flush()
        s.add(
            ThemeItem(item_key="github:o/r#1", theme_id=theme.id, content_hash="h", assigned_at=t)
        )
        s.add(
            Duplicate(
                key_a="github:o/r#1",
                key_b="stackexchange:stackoverflow/9",
                confidence=0.75,
                created_at=t,
            )
        )
    engine.dispose()


def test_init_creates_config_and_schema_then_status_and_export(tmp_path: Path) -> None:
    r = run_triage("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "triage.toml").exists() and (tmp_path / "triage.db").exists()
    again = run_triage("init", cwd=tmp_path)
    assert again.returncode == 0 and "exists" in again.stdout

    _seed(tmp_path / "triage.db")
    status = run_triage("status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["items"] == {"github": 1, "stackexchange": 1}
    assert data["backlog"] == 1

    out = run_triage("export", "--format", "jsonl", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    records = {r["key"]: r for r in map(json.loads, out.stdout.splitlines())}
    # The record DESIGN.md names, field for field.
    assert records["github:o/r#1"] == {
        "key": "github:o/r#1",
        "source": "github",
        "url": "https://github.com/o/r/issues/1",
        "title": "Crash on start",
        "body": "boom",
        "state": "open",
        "created_at": "2025-03-01T00:00:00Z",
        "updated_at": "2025-03-01T00:00:00Z",
        "labels": ["bug"],
        "analysis": {
            "category": "bug",
            "labels": ["bug"],
            "priority": "high",
            "summary": "It crashes.",
            "confidence": 0.9,
            "provider": "local",
            "model": "m",
        },
        "theme": {"id": 1, "title": "Start-up crashes"},
        "duplicates": [{"key": "stackexchange:stackoverflow/9", "confidence": 0.75}],
        "related": [],  # no duplicates run yet
    }
    so = records["stackexchange:stackoverflow/9"]
    assert so["analysis"] is None and so["theme"] is None
    assert so["duplicates"] == [{"key": "github:o/r#1", "confidence": 0.75}]

    csv_out = run_triage("export", "--format", "csv", "--out", "x.csv", cwd=tmp_path)
    assert csv_out.returncode == 0, csv_out.stderr
    rows = {r["key"]: r for r in csv.DictReader(io.StringIO((tmp_path / "x.csv").read_text()))}
    assert set(rows) == set(records)
    row = rows["github:o/r#1"]
    assert (row["category"], row["priority"], row["theme_title"]) == (
        "bug",
        "high",
        "Start-up crashes",
    )
    assert row["duplicates"] == "stackexchange:stackoverflow/9" and row["labels"] == "bug"

    nowhere = run_triage("export", "--out", "no/such/dir/x.jsonl", cwd=tmp_path)
    assert nowhere.returncode == 2
    assert nowhere.stderr.strip() == (
        "error: --out no/such/dir/x.jsonl: cannot write there (No such file or directory)"
    )


def test_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "triage.toml").write_text("[github]\nrepoz = 1\n")
    r = run_triage("status", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: unknown config key 'github.repoz' in triage.toml"


def test_out_of_date_schema_refused_with_hint(tmp_path: Path) -> None:
    r = run_triage("status", cwd=tmp_path)  # no init: empty database file
    assert r.returncode == 2
    assert "triage db upgrade" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_unopenable_database(tmp_path: Path) -> None:
    r = run_triage(
        "status",
        cwd=tmp_path,
        env={"TRIAGE_DATABASE__URL": "postgresql+psycopg://nobody@127.0.0.1:1/x"},
    )
    assert r.returncode == 1
    assert r.stderr.startswith("error: cannot open database") and "Traceback" not in r.stderr


def test_db_downgrade_and_upgrade(tmp_path: Path) -> None:
    assert run_triage("init", cwd=tmp_path).returncode == 0
    down = run_triage("db", "downgrade", "base", cwd=tmp_path)
    assert down.returncode == 0 and "base (no triage tables)" in down.stdout
    assert run_triage("status", cwd=tmp_path).returncode == 2
    up = run_triage("db", "upgrade", cwd=tmp_path)
    assert up.returncode == 0
    assert run_triage("status", cwd=tmp_path).returncode == 0


def test_usage_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    for args, expected in [
        (("backfill", "github", "o/r", "--limit", "0"), "--limit"),
        (("bogus",), "No such command 'bogus'"),
        (("backfill", "github"), "Missing argument"),
    ]:
        r = run_triage(*args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
