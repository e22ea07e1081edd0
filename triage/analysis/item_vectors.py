"""Vectors of items' text, stored per content hash (table `embeddings`): made once, then read.

Duplicates and themes both need a vector per item. Made from text, a vector needs the item's
body read and its source's template removed; stored, it needs neither, so a run over 200,000
items reads the text of only the items that are new or changed. Offline word counts
(triage.analysis.words) and a provider's embeddings are stored alike, under their own names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy import sparse
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from triage import boilerplate
from triage.analysis import words
from triage.analysis.item_refs import ItemText, Progress, Ref
from triage.analysis.summaries import summaries
from triage.db.engine import transaction
from triage.db.llm_calls import record_calls
from triage.db.schema import Embedding, Item
from triage.db.store import utcnow
from triage.providers.calls import CallRecord

# Word counts are stored under these names; a new number re-counts every item once.
WORDS_DUPLICATES = "words:duplicates-1"  # code kept: two questions often share the snippet
WORDS_THEMES = "words:themes-1"  # code and URLs left out
TEMPLATE_SAMPLE = 5000  # a scope's template is learned from its newest items, this many
READ_CHUNK = 2000  # items read (and their vectors made) at a time
KEYS_PER_QUERY = 900  # keys per IN (...), under SQLite's parameter limit

# Makes the stored form of some items' vectors, and says what the calls for them cost.
Maker = Callable[[list[ItemText]], tuple[list[bytes], list[CallRecord]]]


def chunks(seq: Sequence[str], size: int = KEYS_PER_QUERY) -> Iterator[Sequence[str]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


class Templates:
    """Each scope's template (triage.boilerplate), learned once a run from its newest items."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._learned: dict[str, boilerplate.Boilerplate] = {}

    def strip(self, key: str, body: str) -> str:
        scope = boilerplate.scope_of(key)
        learned = self._learned.get(scope)
        if learned is None:
            learned = self._learned[scope] = boilerplate.learn(self._sample(scope))
        return learned.strip(body)

    def _sample(self, scope: str) -> list[str]:
        like = re.sub(r"([%_\\])", r"\\\1", scope)
        with self._sessions() as session:
            rows = session.execute(
                select(Item.key, Item.body)
                .where(
                    Item.key.like(f"{like}#%", escape="\\")
                    | Item.key.like(f"{like}/%", escape="\\")
                )
                .order_by(Item.created_at.desc(), Item.key.desc())
                .limit(TEMPLATE_SAMPLE)
            )
            return [body or "" for key, body in rows if boilerplate.scope_of(key) == scope]


def read_texts(
    sessions: sessionmaker[Session], keys: Sequence[str], templates: Templates
) -> dict[str, ItemText]:
    """The current text of these items, each with and without its template."""
    out: dict[str, ItemText] = {}
    with sessions() as session:
        for chunk in chunks(keys):
            items = list(session.scalars(select(Item).where(Item.key.in_(list(chunk)))))
            sums = summaries(session, {i.key: i.content_hash for i in items})
            for i in items:
                body = i.body or ""
                out[i.key] = ItemText(
                    i.key,
                    i.source,
                    i.title,
                    sums.get(i.key, ""),
                    body,
                    templates.strip(i.key, body),
                    i.content_hash,
                    i.created_at,
                )
    return out


@dataclass
class Made:
    made: int = 0
    reused: int = 0
    calls: int = 0


def ensure(
    sessions: sessionmaker[Session],
    refs: Sequence[Ref],
    model: str,
    make: Maker,
    templates: Templates,
    batch: int = READ_CHUNK,
    progress: Progress | None = None,
) -> Made:
    """Store a vector under `model` for every item whose current text has none.

    Each batch is committed as it is made, so an interruption (a budget, a failed call, Ctrl-C)
    keeps what was made and a re-run goes on from there.
    """
    with sessions() as session:
        stored = dict(
            session.execute(
                select(Embedding.item_key, Embedding.content_hash).where(Embedding.model == model)
            ).all()
        )
    todo = list({r.key: r for r in refs if stored.get(r.key) != r.content_hash}.values())
    del stored
    out = Made(reused=len(refs) - len(todo))
    for start in range(0, len(todo), READ_CHUNK):
        part = todo[start : start + READ_CHUNK]
        texts = read_texts(sessions, [r.key for r in part], templates)
        found = [texts[r.key] for r in part if r.key in texts]
        for b in range(0, len(found), batch):
            group = found[b : b + batch]
            blobs, calls = make(group)
            now = utcnow()
            with transaction(sessions) as session:
                record_calls(session, calls, now)
                keys = [t.key for t in group]
                for chunk in chunks(keys):
                    session.execute(
                        delete(Embedding).where(
                            Embedding.model == model, Embedding.item_key.in_(list(chunk))
                        )
                    )
                session.execute(
                    insert(Embedding),
                    [
                        {
                            "item_key": t.key,
                            "model": model,
                            "content_hash": t.content_hash,
                            "vector": blob,
                            "created_at": now,
                        }
                        for t, blob in zip(group, blobs, strict=True)
                    ],
                )
            out.made += len(group)
            out.calls += len(calls)
            if progress:
                progress("vectors", out.made, len(todo))
    return out


def stored(
    sessions: sessionmaker[Session], keys: Sequence[str], model: str
) -> Iterator[tuple[int, bytes, datetime]]:
    """(position in `keys`, vector, when it was made) of every key that has one, streamed; a
    key given twice is yielded at both positions."""
    position: dict[str, list[int]] = {}
    for n, k in enumerate(keys):
        position.setdefault(k, []).append(n)
    unique = list(position)
    with sessions() as session:
        for chunk in chunks(unique):
            rows = session.execute(
                select(Embedding.item_key, Embedding.vector, Embedding.created_at).where(
                    Embedding.model == model, Embedding.item_key.in_(list(chunk))
                )
            )
            for key, blob, made in rows:
                for n in position[key]:
                    yield n, blob, made


def load_words(
    sessions: sessionmaker[Session], keys: Sequence[str], model: str
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Stored word counts of these keys as rows (in order), and when each was made."""
    rows: list[tuple[np.ndarray, np.ndarray]] = [
        (np.zeros(0, np.int32), np.zeros(0, np.float32))
    ] * len(keys)
    made = np.zeros(len(keys), dtype="datetime64[us]")
    for n, blob, when in stored(sessions, keys, model):
        rows[n] = words.unpack(blob)
        made[n] = np.datetime64(when, "us")
    return words.stack(rows), made


def load_dense(
    sessions: sessionmaker[Session], keys: Sequence[str], model: str
) -> tuple[np.ndarray, np.ndarray]:
    """Stored embeddings of these keys as L2-normalised rows (in order), and when each was made.

    Filled into one preallocated matrix as they are read: 200,000 vectors of 768 floats are
    614 MB once, never twice.
    """
    matrix: np.ndarray | None = None
    made = np.zeros(len(keys), dtype="datetime64[us]")
    for n, blob, when in stored(sessions, keys, model):
        vec = np.frombuffer(blob, dtype="<f4")
        if matrix is None:
            matrix = np.zeros((len(keys), len(vec)), dtype=np.float32)
        if len(vec) == matrix.shape[1]:
            matrix[n] = vec
        made[n] = np.datetime64(when, "us")
    if matrix is None:
        return np.zeros((len(keys), 0), dtype=np.float32), made
    for start in range(0, len(matrix), 10_000):
        part = matrix[start : start + 10_000]
        norms = np.linalg.norm(part, axis=1, keepdims=True)
        np.divide(part, norms, out=part, where=norms > 0)
    return matrix, made


def word_maker(model: str) -> Maker:
    """Offline word counts: duplicates keep code, themes leave it out."""
    from triage.analysis.vectors import item_text

    keep_code = model == WORDS_DUPLICATES

    def make(texts: list[ItemText]) -> tuple[list[bytes], list[CallRecord]]:
        written = [item_text(t.title, t.summary, t.stripped, keep_code=keep_code) for t in texts]
        return words.pack_rows(words.counts(written)), []

    return make
