"""Shared set-up for label write-back tests: a fake GitHub repo synced into a database."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from jobs import registry
from tests.fakes.github import FakeGitHub
from triage.clients.github import GitHubClient, RetryPolicy
from triage.config import Config, Secrets
from triage.context import Context
from triage.db import migrate
from triage.db.engine import transaction
from triage.db.schema import Analysis, Item, LabelThreshold
from triage.db.store import utcnow

REPO = "acme/widgets"
TOKEN = "ghp_" + "x" * 36


def make_ctx(db_url: str, gh: FakeGitHub, **labels: Any) -> Context:
    cfg = Config.model_validate(
        {
            "database": {"url": db_url},
            "github": {"api_url": gh.base_url, "repos": [REPO], "max_retries": 1},
            "labels": {"min_confidence": 0.8, **labels},
        }
    )
    ctx = Context(config=cfg, secrets=Secrets(github_token=SecretStr(TOKEN)))
    migrate.upgrade(ctx.engine)
    # The Context holds every client: this is the real client, with GitHub's one-second pause
    # between writes switched off so the tests stay quick.
    ctx.github = GitHubClient(
        gh.base_url,
        TOKEN,
        seconds_between_writes=None,
        policy=RetryPolicy(max_retries=1, retry_backoff=0.01),
    )
    return ctx


def sync(ctx: Context) -> dict[str, int]:
    return registry.sync(ctx)


def analyse(
    ctx: Context,
    number: int,
    category: str,
    confidence: float,
    labels: list[str] | None = None,
    provider: str = "gemini",
    stale: bool = False,
    summary: str | None = None,
    reason: str | None = None,
) -> int:
    """Store an analysis of issue `number` as the analyze step would."""
    key = f"github:{REPO}#{number}"
    with transaction(ctx.sessions) as s:
        item = s.get(Item, key)
        assert item is not None, key
        row = Analysis(
            item_key=key,
            content_hash="0" * 64 if stale else item.content_hash,
            provider=provider,
            model="m",
            prompt_version=f"v{utcnow().timestamp()}",
            status="ok",
            reason=reason,
            category=category,
            labels=labels or [],
            priority="medium",
            summary=summary if summary is not None else f"summary of {number}",
            confidence=confidence,
            created_at=utcnow(),
        )
        s.add(row)
        s.flush()
        return row.id


def set_threshold(ctx: Context, label: str, provider: str, threshold: float) -> None:
    with transaction(ctx.sessions) as s:
        s.add(
            LabelThreshold(
                label=label,
                provider=provider,
                threshold=threshold,
                precision=0.9,
                coverage=0.5,
                created_at=utcnow(),
            )
        )


def human_removes(gh: FakeGitHub, number: int, label: str) -> None:
    """A maintainer removes a label through the API, as the web UI does."""
    resp = httpx.delete(
        f"{gh.base_url}/repos/{REPO}/issues/{number}/labels/{label}",
        headers={"Authorization": "token maintainer"},
    )
    assert resp.status_code == 200, resp.text


def label_posts(gh: FakeGitHub, number: int | None = None) -> int:
    which = str(number) if number is not None else r"\d+"
    path = rf"/repos/{REPO}/issues/{which}/labels$"
    return len(gh.requests_to(path, method="POST"))


def issue_labels(gh: FakeGitHub, number: int) -> list[str]:
    return list(gh.repo(REPO).issues[number].labels)


def item_keys(ctx: Context) -> list[str]:
    with ctx.sessions() as s:
        return list(s.scalars(select(Item.key).order_by(Item.key)))
