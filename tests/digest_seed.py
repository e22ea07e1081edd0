"""Rows for digest tests, written straight into the tables the digest reads."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from triage.db.schema import Analysis, Duplicate, Item, LLMCall, Theme, ThemeItem


class Seed:
    """Collect rows with small helpers, then `flush()` them in one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows: dict[Any, list[dict[str, Any]]] = {
            t: [] for t in (Item, Theme, ThemeItem, Analysis, Duplicate, LLMCall)
        }
        self.hashes: dict[str, str] = {}
        self._n = itertools.count(1)
        self._theme_ids = itertools.count(1)

    def item(
        self,
        created_at: datetime,
        source: str = "github",
        title: str | None = None,
        state: str = "open",
        answer_count: int = 0,
        is_answered: bool = False,
        reactions: int = 0,
        url: str | None = None,
    ) -> str:
        n = next(self._n)
        if source == "github":
            key, scope, link = (
                f"github:acme/widgets#{n}",
                "acme/widgets",
                f"https://github.com/acme/widgets/issues/{n}",
            )
        else:
            key, scope, link = (
                f"stackexchange:stackoverflow/{n}",
                "stackoverflow",
                f"https://stackoverflow.com/q/{n}",
            )
        self.hashes[key] = f"hash-{n}"
        self.rows[Item].append(
            {
                "key": key, "source": source, "scope": scope, "number": n,
                "url": url if url is not None else link, "title": title or f"Item {n}", "body": "",
                "state": state, "state_reason": None, "author": "someone", "labels": [], "tags": [],
                "assignees": [], "milestone": None, "is_pull_request": False, "comments": 0,
                "reactions": reactions, "score": 0, "answer_count": answer_count,
                "is_answered": is_answered, "accepted_answer_id": None, "view_count": 0,
                "created_at": created_at, "updated_at": created_at, "closed_at": None,
                "content_hash": self.hashes[key], "extra": {}, "fetched_at": created_at,
            }
        )  # fmt: skip
        return key

    def analysis(
        self,
        key: str,
        category: str | None,
        priority: str | None = None,
        at: datetime | None = None,
        content_hash: str | None = None,
        summary: str | None = None,
        model: str = "m1",
    ) -> None:
        self.rows[Analysis].append(
            {
                "item_key": key, "content_hash": content_hash or self.hashes[key],
                "provider": "local", "model": model, "prompt_version": "v1",
                "status": "ok" if category else "needs_review", "reason": None,
                "category": category, "labels": [], "priority": priority, "summary": summary,
                "confidence": 0.9, "dropped": [], "llm_call_id": None,
                "created_at": at or datetime(2020, 1, 1),
            }
        )  # fmt: skip

    def theme(self, title: str, merged_into: int | None = None, description: str = "") -> int:
        tid = next(self._theme_ids)
        now = datetime(2020, 1, 1)
        self.rows[Theme].append(
            {
                "id": tid, "title": title, "description": description, "terms": [],
                "provider": "local", "merged_into": merged_into,
                "merged_at": now if merged_into else None, "created_at": now, "updated_at": now,
            }
        )  # fmt: skip
        return tid

    def assign(self, key: str, theme_id: int) -> None:
        self.rows[ThemeItem].append(
            {"item_key": key, "theme_id": theme_id, "content_hash": self.hashes[key],
             "assigned_at": datetime(2020, 1, 1)}
        )  # fmt: skip

    def duplicate(
        self, a: str, b: str, at: datetime, confidence: float = 0.9, reason: str = ""
    ) -> None:
        a, b = sorted((a, b))
        self.rows[Duplicate].append(
            {"key_a": a, "key_b": b, "similarity": 0.8, "confidence": confidence,
             "reason": reason, "provider": "local", "model": "m1", "created_at": at}
        )  # fmt: skip

    def llm_call(self, at: datetime, input_tokens: int, output_tokens: int, cost: float) -> None:
        self.rows[LLMCall].append(
            {"provider": "gemini", "model": "flash", "prompt_version": "v1", "purpose": "classify",
             "items": 10, "input_tokens": input_tokens, "cached_tokens": input_tokens // 4,
             "output_tokens": output_tokens, "latency_ms": 100, "outcome": "ok", "error": None,
             "cost_usd": cost, "batch_mode": False, "created_at": at}
        )  # fmt: skip

    def flush(self) -> None:
        with self.engine.begin() as conn:
            for table in (Item, Theme, ThemeItem, Analysis, Duplicate, LLMCall):
                if self.rows[table]:
                    conn.execute(insert(table), self.rows[table])
                    self.rows[table] = []


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
