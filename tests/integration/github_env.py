"""Shared set-up for GitHub tests: a fake API, a Context pointing at it, and ingest helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from tests.fakes.github import FakeGitHub
from triage import ingest
from triage.config import Config, Secrets
from triage.context import Context
from triage.db import migrate
from triage.db.schema import Item
from triage.ingest import RunStats
from triage.sources.github import make_sources


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def make_ctx(url: str, db_url: str, token: str | None = "ghp_valid", **github: Any) -> Context:
    data = {"github": {"api_url": url, **github}, "database": {"url": db_url}}
    config = Config.model_validate(data)
    ctx = Context(config=config, secrets=Secrets(github_token=SecretStr(token) if token else None))
    migrate.upgrade(ctx.engine)
    return ctx


def backfill(ctx: Context, repo: str = "octo/hello", **kw: Any) -> RunStats:
    (source,) = make_sources(ctx, [repo])
    return ingest.run(
        ctx.sessions, source, ingest.backfill_cursor_name(source, None), advance_sync=True, **kw
    )


def sync(ctx: Context, repo: str = "octo/hello") -> RunStats:
    """One sync pass as `triage sync` makes it: starting with the conditional quiet check."""
    (source,) = make_sources(ctx, [repo], conditional=True)
    return ingest.run(ctx.sessions, source, ingest.sync_cursor_name(source))


def stored(ctx: Context) -> dict[str, Item]:
    with ctx.sessions() as s:
        return {i.key: i for i in s.scalars(select(Item))}


def item_count(ctx: Context) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Item)) or 0)
