"""`triage themes` and `triage duplicates` as a user runs them (offline and against fake Gemini)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import tests.fakes.themes_model  # noqa: F401  (registers the themes/duplicates responders)
from tests.digest_seed import Seed
from tests.fakes.corpus import PROBLEMS, batch
from tests.fakes.gemini import DEFAULT_KEY, FakeGemini
from tests.integration.test_duplicates import cross_post
from triage.db import migrate, store
from triage.db.engine import make_engine, session_factory, transaction

from .cli import run_triage


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


def test_offline_themes_then_duplicates(workdir: Path) -> None:
    r = run_triage("themes", "--window", "7d", "--provider", "local", cwd=workdir)
    assert r.returncode == 0, r.stderr
    out = r.stdout.replace("\n", " ")
    assert "17 of 17 items themed" in out and "4 new themes" in out
    assert "themes in the window" in out
    again = run_triage("themes", "--provider", "local", cwd=workdir)
    assert again.returncode == 0 and "nothing new to theme in 7d" in again.stdout

    d = run_triage("duplicates", "--provider", "local", cwd=workdir)
    assert d.returncode == 0, d.stderr
    found = re.search(r"(\d+) new links", d.stdout)
    assert found is not None and int(found.group(1)) >= 1
    assert "github:acme/sdk#1 ~ stackexchange:stackoverflow/777" in d.stdout
    assert "both mention" in d.stdout
    d2 = run_triage("duplicates", "--provider", "local", cwd=workdir)
    rerun = d2.stdout.replace("\n", " ")
    # Nothing new or changed: no item looks for neighbours again and nothing is linked twice.
    assert "17 open items, 0 looked for neighbours" in rerun and "0 new links" in rerun


def test_bad_window_and_unknown_provider_are_one_line_usage_errors(workdir: Path) -> None:
    r = run_triage("themes", "--window", "7x", cwd=workdir)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: invalid window '7x'")
    assert len(r.stderr.strip().splitlines()) == 1
    p = run_triage("duplicates", "--provider", "gpt", cwd=workdir)
    assert p.returncode == 2 and "unknown provider" in p.stderr


def test_gemini_without_a_key_says_what_to_do(workdir: Path) -> None:
    # [llm] provider defaults to gemini: without its key, the local provider, said once.
    r = run_triage("themes", cwd=workdir)
    assert r.returncode == 0, r.stderr
    [said] = r.stderr.strip().splitlines()
    assert "GEMINI_API_KEY is not set: analysing with the local provider" in said
    assert "17 of 17 items themed" in r.stdout.replace("\n", " ")
    # Gemini asked for by name without its key: one line saying what to do.
    g = run_triage("themes", "--provider", "gemini", cwd=workdir)
    assert g.returncode == 2
    assert "GEMINI_API_KEY" in g.stderr and "--provider local" in g.stderr


def test_gemini_themes_and_duplicates_against_the_fake(workdir: Path, fake: FakeGemini) -> None:
    env = {"TRIAGE_LLM__GEMINI__BASE_URL": fake.base_url, "GEMINI_API_KEY": DEFAULT_KEY}
    r = run_triage("themes", cwd=workdir, env=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout.replace("\n", " ")
    assert "17 of 17 items themed" in out and "1 model calls" in out
    assert fake.generate_calls == 1
    d = run_triage("duplicates", cwd=workdir, env=env)
    assert d.returncode == 0, d.stderr
    assert "17 embedded" in d.stdout.replace("\n", " ")
    assert "github:acme/sdk#1 ~ stackexchange:stackoverflow/777" in d.stdout
    assert DEFAULT_KEY not in r.stdout + r.stderr + d.stdout + d.stderr


def test_a_failed_model_call_exits_1_and_the_rerun_finishes(
    workdir: Path, fake: FakeGemini
) -> None:
    env = {"TRIAGE_LLM__GEMINI__BASE_URL": fake.base_url, "GEMINI_API_KEY": DEFAULT_KEY}
    fake.fail(500, times=10)
    r = run_triage("themes", cwd=workdir, env={**env, "TRIAGE_LLM__GEMINI__MAX_RETRIES": "0"})
    assert r.returncode == 1
    assert "17 items not themed (a model call failed); re-run" in r.stdout.replace("\n", " ")
    fake.faults.clear()
    again = run_triage("themes", cwd=workdir, env=env)
    assert again.returncode == 0 and "17 of 17 items themed" in again.stdout.replace("\n", " ")


def test_theme_titles_are_printed_as_plain_text(tmp_path: Path) -> None:
    (tmp_path / "triage.toml").write_text("")
    engine = make_engine(f"sqlite:///{tmp_path / 'triage.db'}")
    migrate.upgrade(engine)
    seed = Seed(engine)
    title = "Crash in [/] parser [bold]loud[/bold]"  # a model may word a theme so
    seed.assign(
        seed.item(datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)), seed.theme(title)
    )
    seed.flush()
    engine.dispose()
    r = run_triage("themes", "--provider", "local", cwd=tmp_path, env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert title in r.stdout
