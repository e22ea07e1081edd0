"""0005: a repository stored under two spellings becomes one, keeping the newest copy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from triage.db import migrate
from triage.db.engine import make_engine

OLD, NEW = datetime(2024, 1, 1), datetime(2024, 6, 1)


def _item(key: str, title: str, updated: datetime) -> dict[str, Any]:
    scope = key.split(":", 1)[1].split("#")[0]
    return {
        "key": key, "source": "github", "scope": scope, "number": 1, "url": "u", "title": title,
        "body": "b", "state": "open", "labels": [], "tags": [], "assignees": [],
        "is_pull_request": False, "comments": 0, "reactions": 0, "score": 0, "answer_count": 0,
        "is_answered": False, "view_count": 0, "created_at": OLD, "updated_at": updated,
        "content_hash": title, "extra": {}, "fetched_at": updated,
    }  # fmt: skip


def _analysis(key: str, content_hash: str, category: str) -> dict[str, Any]:
    return {
        "item_key": key, "content_hash": content_hash, "provider": "local", "model": "m",
        "prompt_version": "1", "status": "ok", "category": category, "labels": [],
        "dropped": [], "created_at": OLD,
    }  # fmt: skip


def test_a_repository_stored_twice_is_merged_into_its_newest_copy(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine, "0003")
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    with engine.begin() as conn:
        conn.execute(
            t["items"].insert(),
            [
                _item("github:octo/demo#1", "old title", OLD),
                _item("github:Octo/Demo#1", "new title", NEW),
                _item("github:Octo/Demo#2", "only mixed", OLD),
                _item("github:octo/demo#3", "other", OLD),
            ],
        )
        conn.execute(
            t["analyses"].insert(),
            [
                _analysis("github:octo/demo#1", "old title", "bug"),
                _analysis("github:Octo/Demo#1", "new title", "question"),
            ],
        )
        conn.execute(
            t["themes"].insert(),
            [{"id": 1, "title": "t", "description": "", "terms": [], "provider": "",
              "created_at": OLD, "updated_at": OLD}],
        )  # fmt: skip
        conn.execute(
            t["theme_items"].insert(),
            [
                {"item_key": k, "theme_id": 1, "content_hash": "h", "assigned_at": OLD}
                for k in ("github:octo/demo#1", "github:Octo/Demo#1")
            ],
        )
        dup = {"similarity": 0.9, "confidence": 0.9, "reason": "r", "provider": "", "model": ""}
        conn.execute(
            t["duplicates"].insert(),
            [
                {"key_a": "github:octo/demo#1", "key_b": "github:Octo/Demo#1", "created_at": OLD,
                 **dup},
                {"key_a": "github:Octo/Demo#1", "key_b": "github:octo/demo#3", "created_at": OLD,
                 **dup},
                {"key_a": "github:octo/demo#1", "key_b": "github:octo/demo#3", "created_at": OLD,
                 **dup},
            ],
        )  # fmt: skip
        conn.execute(
            t["cursors"].insert(),
            [
                {"name": "sync:github:octo/demo", "value": "2024-01-01T00:00:00Z", "state": {},
                 "updated_at": OLD},
                {"name": "sync:github:Octo/Demo", "value": "2024-06-01T00:00:00Z", "state": {},
                 "updated_at": NEW},
            ],
        )  # fmt: skip

    migrate.upgrade(engine)

    with engine.connect() as conn:
        items = dict(conn.execute(sa.select(t["items"].c.key, t["items"].c.title)).all())
        assert items == {
            "github:octo/demo#1": "new title",
            "github:octo/demo#2": "only mixed",
            "github:octo/demo#3": "other",
        }
        scopes = set(conn.execute(sa.select(t["items"].c.scope)).scalars())
        assert scopes == {"octo/demo"}
        analyses = conn.execute(sa.select(t["analyses"].c.item_key, t["analyses"].c.category)).all()
        assert sorted(analyses) == [
            ("github:octo/demo#1", "bug"),
            ("github:octo/demo#1", "question"),
        ]
        assert list(conn.execute(sa.select(t["theme_items"].c.item_key)).scalars()) == [
            "github:octo/demo#1"
        ]
        pairs = conn.execute(sa.select(t["duplicates"].c.key_a, t["duplicates"].c.key_b)).all()
        assert pairs == [("github:octo/demo#1", "github:octo/demo#3")]
        cursors = conn.execute(sa.select(t["cursors"].c.name, t["cursors"].c.value)).all()
        assert cursors == [("sync:github:octo/demo", "2024-06-01T00:00:00Z")]
    engine.dispose()
