"""What triage wrote to GitHub and what humans undid: label_writes and label_corrections.

A label triage applied that later syncs show gone was removed by a human. It is recorded as a
correction, never written again, and offered to prompts as a counter-example.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from triage.db.schema import Analysis, Item, LabelCorrection, LabelWrite
from triage.db.store import utcnow

APPLIED, FAILED, SKIPPED = "applied", "failed", "skipped"
# Recorded before the POST is sent: a crash before `applied` is recorded leaves this, and the
# next run checks the labels before writing again (its own label, not a human's).
INTENDED = "intended"


def _dialect(session: Session) -> Any:
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


def record_write(
    session: Session,
    item_key: str,
    label: str,
    confidence: float,
    analysis_id: int | None,
    status: str,
    reason: str | None = None,
    item_updated_at: datetime | None = None,
) -> None:
    """Upsert the one row per (issue, label); an applied row is never downgraded."""
    table = LabelWrite.__table__
    stmt = (
        _dialect(session)
        .insert(LabelWrite)
        .values(
            item_key=item_key,
            label=label,
            confidence=confidence,
            analysis_id=analysis_id,
            status=status,
            reason=reason,
            written_at=utcnow(),
            item_updated_at=item_updated_at,
        )
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["item_key", "label"],
        set_={
            c: stmt.excluded[c]
            for c in (
                "confidence",
                "analysis_id",
                "status",
                "reason",
                "written_at",
                "item_updated_at",
            )
        },
        where=table.c.status != APPLIED,
    )
    session.execute(stmt)


def writes_by_item(session: Session, keys: list[str]) -> dict[str, dict[str, LabelWrite]]:
    out: dict[str, dict[str, LabelWrite]] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        for w in session.scalars(select(LabelWrite).where(LabelWrite.item_key.in_(chunk))):
            out.setdefault(w.item_key, {})[w.label.lower()] = w
    return out


def corrected(session: Session, keys: list[str]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        rows = session.execute(
            select(LabelCorrection.item_key, LabelCorrection.label).where(
                LabelCorrection.item_key.in_(chunk)
            )
        )
        out.update((k, label.lower()) for k, label in rows)
    return out


def removed_by_human(item: Item, write: LabelWrite) -> bool:
    """A copy fetched after our write, newer than the issue we labelled, lacks the label.

    Each comparison stays on one clock: GitHub's `updated_at` with GitHub's, our `fetched_at`
    with our `written_at`. A copy listed just before the write (committed after it) has the old
    `updated_at` and is not mistaken for a removal.
    """
    if write.status != APPLIED or write.item_updated_at is None:
        return False
    if write.label.lower() in {str(x).lower() for x in item.labels or []}:
        return False
    return item.fetched_at > write.written_at and item.updated_at > write.item_updated_at


def find_corrections(session: Session) -> list[tuple[str, str]]:
    """Applied labels a human has since removed and no row records yet; reads only."""
    rows = session.execute(
        select(Item, LabelWrite)
        .join(LabelWrite, LabelWrite.item_key == Item.key)
        .where(LabelWrite.status == APPLIED)
    )
    found = [(w.item_key, w.label) for item, w in rows if removed_by_human(item, w)]
    if not found:
        return []
    known = corrected(session, sorted({k for k, _ in found}))
    return [(k, label) for k, label in found if (k, label.lower()) not in known]


def record_corrections(session: Session) -> list[tuple[str, str]]:
    """Record what find_corrections sees, so prompts can show it; returns the new ones."""
    new = find_corrections(session)
    now = utcnow()
    for key, label in new:
        session.add(LabelCorrection(item_key=key, label=label, seen_at=now))
    session.flush()
    return new


@dataclass(frozen=True)
class CounterExample:
    """An issue a human told us a label does not fit (they removed it after triage added it)."""

    key: str
    title: str
    body: str
    wrong_label: str
    category: str | None  # what triage had answered
    seen_at: datetime


def corrections_for(
    session: Session, scope: str | None = None, limit: int = 20
) -> list[CounterExample]:
    """Human corrections, newest first, for prompts to show as "not this label" examples.

    `scope` is a repository ("owner/name") or None for every scope.
    """
    stmt = (
        select(LabelCorrection, Item, LabelWrite.analysis_id)
        .join(Item, Item.key == LabelCorrection.item_key)
        .join(
            LabelWrite,
            (LabelWrite.item_key == LabelCorrection.item_key)
            & (LabelWrite.label == LabelCorrection.label),
            isouter=True,
        )
        .order_by(LabelCorrection.seen_at.desc())
        .limit(limit)
    )
    if scope is not None:
        stmt = stmt.where(Item.scope == scope)
    rows = session.execute(stmt).all()
    analysis_ids = [a for _, _, a in rows if a is not None]
    categories: dict[int, str | None] = {
        aid: cat
        for aid, cat in session.execute(
            select(Analysis.id, Analysis.category).where(Analysis.id.in_(analysis_ids))
        )
    }
    return [
        CounterExample(
            key=item.key,
            title=item.title,
            body=item.body,
            wrong_label=corr.label,
            category=categories.get(aid) if aid is not None else None,
            seen_at=corr.seen_at,
        )
        for corr, item, aid in rows
    ]
