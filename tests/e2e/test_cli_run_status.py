"""One-off `triage duplicates` and `triage themes` runs, as `triage status` reports them."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import tests.fakes.themes_model  # noqa: F401  (registers the themes/duplicates responders)
from jobs import runs
from tests.fakes.corpus import PROBLEMS, batch
from tests.fakes.gemini import DEFAULT_KEY, FakeGemini
from tests.integration.test_duplicates import cross_post
from triage.db import migrate, store
from triage.db.engine import make_engine, session_factory, transaction

from .cli import run_triage, triage_env

WIDE = {"COLUMNS": "250"}  # the whole jobs table on one line per job


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "triage.toml").write_text("")  # every key at its default
    yesterday = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
    items = batch(PROBLEMS[:4], 4, yesterday, seed=21)
    items.append(cross_post(items[0], 777))
    engine = make_engine(f"sqlite:///{tmp_path / 'triage.db'}")
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as s:
        store.upsert_items(s, items)
    engine.dispose()
    return tmp_path


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


def gemini_env(fake: FakeGemini) -> dict[str, str]:
    return {"TRIAGE_LLM__GEMINI__BASE_URL": fake.base_url, "GEMINI_API_KEY": DEFAULT_KEY}


def status(workdir: Path) -> str:
    r = run_triage("status", cwd=workdir, env=WIDE)
    assert r.returncode == 0, r.stderr
    return r.stdout


def status_json(workdir: Path) -> dict[str, Any]:
    r = run_triage("status", "--json", cwd=workdir)
    assert r.returncode == 0, r.stderr
    jobs: dict[str, Any] = json.loads(r.stdout)["jobs"]
    return jobs


def job_row(table: str, job: str) -> list[str]:
    """The cells of a job's row in the jobs table."""
    line = next(x for x in table.splitlines() if re.match(rf"[│┃|]\s*{job}\s*[│┃|]", x))
    return [cell.strip() for cell in re.split(r"[│┃|]", line)[1:-1]]


def test_a_one_off_duplicates_run_shows_in_status_with_how_long_it_took(workdir: Path) -> None:
    before = status(workdir)
    assert job_row(before, "duplicates")[2:5] == ["never", "-", ""]
    assert not re.search(r"^duplicates:", before, re.M)

    started = time.monotonic()
    d = run_triage("duplicates", "--provider", "local", cwd=workdir)
    wall = time.monotonic() - started
    assert d.returncode == 0, d.stderr
    linked = re.search(r"(\d+) new links", d.stdout)
    assert linked is not None and int(linked.group(1)) >= 1

    table = status(workdir)
    header = job_row(table, "job")
    row = dict(zip(header, job_row(table, "duplicates"), strict=True))
    assert row["outcome"] == "ok"
    assert re.fullmatch(r"\d+\.\d s", row["took"]), row
    assert float(row["took"].split()[0]) <= wall
    assert job_row(table, "themes")[3:5] == ["-", ""]  # never run: no took

    [line] = [x for x in table.splitlines() if x.startswith("duplicates:")]
    candidates = re.search(r"(\d+) candidate pairs", d.stdout)
    assert candidates is not None
    assert line == (
        "duplicates: 17 open items, 17 looked for neighbours,"
        f" {candidates.group(1)} candidate pairs, {linked.group(1)} new links (took {row['took']})"
    )

    run = status_json(workdir)["duplicates"]
    assert run["outcome"] == "ok" and run["replica"].startswith("cli:")
    assert 0 < run["took_seconds"] <= wall
    assert run["counts"]["open_items"] == 17 and "links" not in run["counts"]
    assert run["counts"]["linked"] == int(linked.group(1))


def test_a_one_off_themes_run_says_what_it_looked_at(workdir: Path) -> None:
    r = run_triage("themes", "--window", "7d", "--provider", "local", cwd=workdir)
    assert r.returncode == 0, r.stderr
    table = status(workdir)
    [line] = [x for x in table.splitlines() if x.startswith("themes:")]
    assert re.fullmatch(
        r"themes: 17 pending items, 17 themed, 4 new themes \(took \d+\.\d s\)", line
    ), line
    assert status_json(workdir)["themes"]["counts"]["new_themes"] == 4


def test_a_failed_run_is_recorded_as_failed_with_its_counts(
    workdir: Path, fake: FakeGemini
) -> None:
    fake.fail(500, times=10)
    env = {**gemini_env(fake), "TRIAGE_LLM__GEMINI__MAX_RETRIES": "0"}
    r = run_triage("themes", cwd=workdir, env=env)
    assert r.returncode == 1

    run = status_json(workdir)["themes"]
    assert run["outcome"] == "failed"
    assert run["error"] == "17 items not themed (a model call failed)"
    assert run["counts"]["failed"] == 17 and run["took_seconds"] is not None
    table = status(workdir)
    assert job_row(table, "themes")[3] == "failed"
    assert re.search(
        r"^themes: 17 pending items, 0 themed, 0 new themes \(failed, took ", table, re.M
    )
    assert "job failures in the last 24h: 1" in table

    fake.faults.clear()
    again = run_triage("themes", cwd=workdir, env=gemini_env(fake))
    assert again.returncode == 0, again.stderr
    assert status_json(workdir)["themes"]["outcome"] == "ok"


def test_an_error_is_a_failed_run_and_a_usage_error_is_no_run(
    workdir: Path, fake: FakeGemini
) -> None:
    p = run_triage("duplicates", "--provider", "gpt", cwd=workdir)
    assert p.returncode == 2 and "unknown provider" in p.stderr
    assert status_json(workdir)["duplicates"]["outcome"] is None  # never ran

    fake.fail(500, times=100, path=r"[eE]mbedContents?$")
    env = {**gemini_env(fake), "TRIAGE_LLM__GEMINI__MAX_RETRIES": "0"}
    bad = run_triage("duplicates", cwd=workdir, env=env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    run = status_json(workdir)["duplicates"]
    assert run["outcome"] == "failed" and run["took_seconds"] is not None
    assert run["error"] and run["error"] in bad.stderr
    assert job_row(status(workdir), "duplicates")[3] == "failed"


def test_ctrl_c_records_the_run_as_interrupted(workdir: Path, fake: FakeGemini) -> None:
    hold = fake.hold(r":generateContent", after=0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage.cli", "themes"],
        cwd=workdir,
        env=triage_env(gemini_env(fake)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert hold.reached.wait(timeout=60), "themes never asked the model"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        hold.release()  # a worker waiting on the answer must not keep the process alive
        _, stderr = proc.communicate(timeout=30)
    finally:
        hold.release()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    run = status_json(workdir)["themes"]
    assert run["outcome"] == "interrupted" and run["took_seconds"] is not None
    assert "Ctrl-C" in run["error"]


def test_duplicates_say_how_many_items_looked_for_neighbours_when_the_run_counted_them(
    workdir: Path,
) -> None:
    sessions = session_factory(make_engine(f"sqlite:///{workdir / 'triage.db'}"))
    counts = {"open_items": 200_000, "searched": 1_000, "candidates": 3_400, "linked": 12}
    run_id = runs.start(sessions, "duplicates", "cli@2026-01-01T00:00:00Z", "replica-a")
    runs.finish(sessions, run_id, runs.OK, counts)
    [line] = [x for x in status(workdir).splitlines() if x.startswith("duplicates:")]
    assert line.startswith(
        "duplicates: 200,000 open items, 1,000 looked for neighbours, 3,400 candidate pairs,"
        " 12 new links (took "
    )


def test_a_daemon_run_is_summed_up_the_same_way(workdir: Path) -> None:
    r = run_triage("run", "--once", "--only", "duplicates", cwd=workdir, env=WIDE)
    assert r.returncode == 0, r.stderr
    run = status_json(workdir)["duplicates"]
    assert run["outcome"] == "ok" and not run["replica"].startswith("cli:")
    assert run["counts"]["open_items"] == 17 and run["took_seconds"] is not None
    [line] = [x for x in status(workdir).splitlines() if x.startswith("duplicates:")]
    assert re.fullmatch(
        r"duplicates: 17 open items, 17 looked for neighbours, \d+ candidate pairs,"
        r" \d+ new links \(took \d+\.\d s\)",
        line,
    ), line
