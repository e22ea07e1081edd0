"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when configured), fake Gemini."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import Engine, create_engine, text

from tests.fakes.gemini import FakeGemini
from triage.config import Config, Secrets
from triage.context import Context
from triage.db import migrate
from triage.db.engine import make_engine

POSTGRES_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="TRIAGE_TEST_POSTGRES_URL is not set (PostgreSQL tests run in CI)"
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's real config or credentials."""
    for name in list(os.environ):
        if name.startswith("TRIAGE_") and name != "TRIAGE_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    for name in (
        "GITHUB_TOKEN",
        "STACKEXCHANGE_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "SLACK_BOT_TOKEN",
        "SLACK_WEBHOOK_URL",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """A test that configures logging (bound to its captured stream) must not leak it."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'triage.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database per test, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("TRIAGE_TEST_POSTGRES_URL is not set (PostgreSQL tests run in CI)")
    name = f"triage_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on SQLite and (when available) PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'triage.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def local_ctx(db_url: str) -> Iterator[Context]:
    """A migrated database with the local provider: SQLite, and PostgreSQL when configured."""
    config = Config.model_validate({"database": {"url": db_url}, "llm": {"provider": "local"}})
    ctx = Context(config, Secrets())
    migrate.upgrade(ctx.engine)
    yield ctx
    ctx.close()


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    """A migrated SQLite engine."""
    eng = make_engine(sqlite_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def gemini_server() -> Iterator[FakeGemini]:
    """One fake Gemini server per test module (starting one per test is slow)."""
    with FakeGemini() as running:
        yield running


@pytest.fixture
def fake_gemini(gemini_server: FakeGemini) -> FakeGemini:
    """The module's fake Gemini, reset to a fresh server's state for each test."""
    gemini_server.reset()
    return gemini_server
