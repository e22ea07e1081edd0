"""Helpers for the analysis tests: a config pointed at the fake Gemini, and seeded items."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine

from tests.fakes.gemini import DEFAULT_KEY, FakeGemini
from triage.config import Config, Secrets
from triage.context import Context
from triage.db import migrate, store
from triage.db.engine import session_factory, transaction
from triage.sources.base import ItemIn

T0 = datetime(2025, 3, 1, 12, 0)


def gemini_config(fake: FakeGemini, db_url: str = "sqlite://", **llm: Any) -> Config:
    gemini = {"base_url": fake.base_url, "retry_initial_delay": 0.0, "max_retries": 2}
    gemini.update(llm.pop("gemini", {}))
    return Config.model_validate({"database": {"url": db_url}, "llm": {"gemini": gemini, **llm}})


def context(config: Config, engine: Engine, key: str | None = DEFAULT_KEY) -> Context:
    ctx = Context(config=config, secrets=Secrets.from_env({"GEMINI_API_KEY": key} if key else {}))
    ctx.__dict__["engine"] = engine  # the migrated test engine
    return ctx


def make_ctx(tmp_path: Path, fake: FakeGemini, **llm: Any) -> Context:
    """A migrated SQLite file under tmp_path, [llm] pointed at the fake Gemini, with a key."""
    config = Config.model_validate(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'triage.db'}"},
            "llm": {
                "provider": "gemini",
                "gemini": {"base_url": fake.base_url, "max_retries": 0, "retry_initial_delay": 0},
                **llm,
            },
        }
    )
    ctx = Context(config, Secrets(gemini_api_key=SecretStr(DEFAULT_KEY)))
    migrate.upgrade(ctx.engine)
    return ctx


def item(
    n: int,
    title: str,
    body: str = "",
    labels: Iterable[str] = (),
    scope: str = "acme/app",
    updated: datetime | None = None,
) -> ItemIn:
    return ItemIn(
        key=f"github:{scope}#{n}",
        source="github",
        scope=scope,
        number=n,
        url=f"https://github.com/{scope}/issues/{n}",
        title=title,
        body=body,
        labels=list(labels),
        created_at=T0,
        updated_at=updated or T0 + timedelta(minutes=n),
    )


def seed(engine: Engine, items: Iterable[ItemIn]) -> None:
    with transaction(session_factory(engine)) as s:
        store.upsert_items(s, list(items))


MIXED = [
    ("App crashes on start", "Traceback shows an error in main"),
    ("Add support for dark mode", "It would be nice to have"),
    ("How do I configure the proxy?", "I cannot find it"),
    ("Typo in the documentation", "The readme says teh"),
]
