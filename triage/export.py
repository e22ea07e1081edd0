"""`triage export`: one record per item with its analysis, theme and duplicate links."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from triage.db import related
from triage.db.schema import Analysis, Duplicate, Item, Theme, ThemeItem

CSV_FIELDS = [
    "key",
    "source",
    "url",
    "title",
    "state",
    "created_at",
    "updated_at",
    "labels",
    "category",
    "analysis_labels",
    "priority",
    "summary",
    "confidence",
    "provider",
    "model",
    "theme_id",
    "theme_title",
    "duplicates",
    "related",
]


def latest_analyses(session: Session, items: Sequence[Item]) -> dict[str, Analysis]:
    """The newest analysis made from each item's current text."""
    hashes = {i.key: i.content_hash for i in items}
    out: dict[str, Analysis] = {}
    rows = session.scalars(
        select(Analysis)
        .where(Analysis.item_key.in_(list(hashes)))
        .order_by(Analysis.created_at, Analysis.id)
    )
    for a in rows:
        if hashes.get(a.item_key) == a.content_hash:
            out[a.item_key] = a
    return out


def _records(session: Session, items: Sequence[Item]) -> Iterator[dict[str, Any]]:
    keys = [i.key for i in items]
    analyses = latest_analyses(session, items)
    themes = {
        key: (tid, title)
        for key, tid, title in session.execute(
            select(ThemeItem.item_key, Theme.id, Theme.title)
            .join(Theme, Theme.id == ThemeItem.theme_id)
            .where(ThemeItem.item_key.in_(keys))
        )
    }
    dups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in session.scalars(
        select(Duplicate).where(or_(Duplicate.key_a.in_(keys), Duplicate.key_b.in_(keys)))
    ):
        dups[d.key_a].append({"key": d.key_b, "confidence": d.confidence})
        dups[d.key_b].append({"key": d.key_a, "confidence": d.confidence})
    near = related.load(session, keys)
    for item in items:
        a = analyses.get(item.key)
        theme = themes.get(item.key)
        yield {
            "key": item.key,
            "source": item.source,
            "url": item.url,
            "title": item.title,
            "body": item.body,
            "state": item.state,
            "created_at": item.created_at.isoformat() + "Z",
            "updated_at": item.updated_at.isoformat() + "Z",
            "labels": list(item.labels or []),
            "analysis": None
            if a is None
            else {
                "category": a.category,
                "labels": list(a.labels or []),
                "priority": a.priority,
                "summary": a.summary,
                "confidence": a.confidence,
                "provider": a.provider,
                "model": a.model,
            },
            "theme": None if theme is None else {"id": theme[0], "title": theme[1]},
            "duplicates": dups.get(item.key, []),
            # Additive: nearest open neighbours from the last duplicates run, any similarity.
            "related": near.get(item.key, []),
        }


def iter_records(sessions: sessionmaker[Session], chunk: int = 500) -> Iterator[dict[str, Any]]:
    """Stream records in key order, a chunk of items at a time."""
    last = ""
    with sessions() as session:
        while True:
            items = list(
                session.scalars(select(Item).where(Item.key > last).order_by(Item.key).limit(chunk))
            )
            if not items:
                return
            yield from _records(session, items)
            last = items[-1].key
            session.expunge_all()


# OWASP "CSV Injection": a cell starting with one of these is run as a formula by spreadsheets;
# a leading single quote makes it text. https://owasp.org/www-community/attacks/CSV_Injection
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv_row(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: csv_cell(v) for k, v in _csv_fields(rec).items()}


def _csv_fields(rec: dict[str, Any]) -> dict[str, Any]:
    a, t = rec["analysis"] or {}, rec["theme"] or {}
    return {
        **{
            k: rec[k]
            for k in ("key", "source", "url", "title", "state", "created_at", "updated_at")
        },
        "labels": ";".join(rec["labels"]),
        "category": a.get("category"),
        "analysis_labels": ";".join(a.get("labels") or []),
        "priority": a.get("priority"),
        "summary": a.get("summary"),
        "confidence": a.get("confidence"),
        "provider": a.get("provider"),
        "model": a.get("model"),
        "theme_id": t.get("id"),
        "theme_title": t.get("title"),
        "duplicates": ";".join(d["key"] for d in rec["duplicates"]),
        "related": ";".join(f"{r['key']}={r['similarity']}" for r in rec["related"]),
    }


def export_items(sessions: sessionmaker[Session], fmt: str, out: TextIO) -> int:
    n = 0
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    for rec in iter_records(sessions):
        if writer:
            writer.writerow(_csv_row(rec))
        else:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        n += 1
    return n
