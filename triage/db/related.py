"""Each open item's nearest other items with their similarity (table `neighbours`).

A duplicates run replaces the lists of the items it searched (and of older items a new one came
closer to); the export's `related` shows the first PER_ITEM of a list, so a person can look at
the closest reports even below the duplicate threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from triage.db.schema import Item, Neighbour

PER_ITEM = 3
CHUNK = 900  # keys per IN (...): under SQLite's and PostgreSQL's parameter limits

Neighbours = Sequence[tuple[str, float]]


def _chunks(keys: Iterable[str]) -> Iterable[list[str]]:
    every = list(keys)
    for start in range(0, len(every), CHUNK):
        yield every[start : start + CHUNK]


def lists(session: Session, keys: Iterable[str]) -> dict[str, list[tuple[str, float]]]:
    """The stored neighbours of these keys, nearest first (keys without any are absent)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for chunk in _chunks(keys):
        rows = session.execute(
            select(Neighbour.item_key, Neighbour.other_key, Neighbour.similarity)
            .where(Neighbour.item_key.in_(chunk))
            .order_by(Neighbour.item_key, Neighbour.rank)
        )
        for key, other, sim in rows:
            out.setdefault(key, []).append((other, float(sim)))
    return out


def pointing_at(session: Session, keys: Iterable[str]) -> set[str]:
    """Items whose stored neighbours name any of these keys."""
    out: set[str] = set()
    for chunk in _chunks(keys):
        out.update(
            session.scalars(select(Neighbour.item_key).where(Neighbour.other_key.in_(chunk)))
        )
    return out


def replace(session: Session, found: Mapping[str, Neighbours], cleared: bool = False) -> None:
    """Store these items' neighbours in place of what they had (nothing, when `cleared`)."""
    if not cleared:
        for chunk in _chunks(found):
            session.execute(delete(Neighbour).where(Neighbour.item_key.in_(chunk)))
    rows = [
        {"item_key": key, "rank": rank, "other_key": other, "similarity": round(float(sim), 4)}
        for key, near in found.items()
        for rank, (other, sim) in enumerate(near)
    ]
    for start in range(0, len(rows), 1000):
        session.execute(insert(Neighbour), rows[start : start + 1000])


def pointing_at_closed(session: Session) -> set[str]:
    """Items whose stored neighbours name an item that is no longer open."""
    gone = select(Item.key).where((Item.state != "open") | Item.is_pull_request.is_(True))
    return set(session.scalars(select(Neighbour.item_key).where(Neighbour.other_key.in_(gone))))


def drop_not_open(session: Session) -> None:
    """Items closed (or turned into pull requests) since have no neighbours to show."""
    gone = select(Item.key).where((Item.state != "open") | Item.is_pull_request.is_(True))
    session.execute(delete(Neighbour).where(Neighbour.item_key.in_(gone)))


def clear(session: Session) -> None:
    session.execute(delete(Neighbour))


def load(session: Session, keys: Iterable[str]) -> dict[str, list[dict[str, object]]]:
    """`{key: [{"key", "similarity"}, ...]}` for the given keys that have neighbours."""
    return {
        key: [{"key": k, "similarity": round(s, 3)} for k, s in near[:PER_ITEM]]
        for key, near in lists(session, keys).items()
    }
