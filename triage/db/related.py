"""Each open item's nearest neighbours with their similarity (export `related`).

Kept in one cursor row's JSON state, replaced key by key each duplicates run: a person can look
at the closest reports even below the duplicate threshold, and no table change was needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy.orm import Session

from triage.db import store

CURSOR = "duplicates:related"
PER_ITEM = 3

Neighbours = Sequence[tuple[str, float]]


def save(session: Session, found: Mapping[str, Neighbours], open_keys: Iterable[str]) -> None:
    """Store the neighbours found this run; items no longer open are dropped."""
    row = store.get_cursor(session, CURSOR)
    stored: dict[str, list[list[object]]] = dict((row.state or {}) if row else {})
    keep = set(open_keys)
    merged = {k: v for k, v in stored.items() if k in keep}
    for key, near in found.items():
        merged[key] = [[other, round(float(sim), 3)] for other, sim in list(near)[:PER_ITEM]]
    store.set_cursor(session, CURSOR, None, merged)


def load(session: Session, keys: Iterable[str]) -> dict[str, list[dict[str, object]]]:
    """`{key: [{"key", "similarity"}, ...]}` for the given keys that have neighbours."""
    row = store.get_cursor(session, CURSOR)
    state = (row.state or {}) if row else {}
    out: dict[str, list[dict[str, object]]] = {}
    for key in keys:
        near = state.get(key)
        if near:
            out[key] = [{"key": k, "similarity": s} for k, s in near]
    return out
