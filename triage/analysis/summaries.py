"""The summary an analysis made of an item's current text (themes and duplicates show it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.db.schema import Analysis


def summaries(session: Session, hashes: dict[str, str]) -> dict[str, str]:
    """The newest summary made from each item's current text."""
    out: dict[str, str] = {}
    keys = list(hashes)
    for i in range(0, len(keys), 900):
        rows = session.execute(
            select(Analysis.item_key, Analysis.content_hash, Analysis.summary)
            .where(Analysis.item_key.in_(keys[i : i + 900]), Analysis.status == "ok")
            .order_by(Analysis.created_at, Analysis.id)
        )
        for key, chash, summary in rows:
            if summary and hashes.get(key) == chash:
                out[key] = summary
    return out
