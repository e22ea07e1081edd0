"""A provider's embeddings of items, stored per content hash: shared by duplicates and themes.

Both embed the same text (title and body without its template), so a vector made for one is
reused by the other and unchanged text is never embedded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from triage import boilerplate
from triage.analysis import vectors
from triage.db import store
from triage.db.engine import transaction
from triage.db.llm_calls import Budget, record_calls
from triage.db.schema import Embedding
from triage.providers.base import Embedder
from triage.providers.calls import CallRecord
from triage.providers.packing import estimate_tokens, trim_code_and_logs

EMBED_BATCH = 100  # texts per embedding call (Gemini takes at most 100 a request)
EMBED_MAX_CHARS = 6000  # about 1,500 tokens: inside the embedding model's input limit
EMBED_DIMENSIONS = 768  # a quarter of the default size; similarity ranks almost the same


class Doc(Protocol):
    """What is embedded of an item, and the hash that says when to embed it again."""

    @property
    def key(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def content_hash(self) -> str: ...


class Counts(Protocol):
    """A run's tally of vectors made, vectors reused and calls."""

    embedded: int
    reused: int
    calls: int


class Vectoriser(Protocol):
    """Turns texts into vectors with one model, and says what the call cost."""

    model: str

    def embed(self, texts: list[str]) -> tuple[list[np.ndarray], CallRecord]: ...


class ModelEmbedder:
    """A provider's embeddings, metered by the run's token budget."""

    def __init__(self, provider: Embedder, budget: Budget | None = None) -> None:
        self.provider = provider
        self.model = provider.embedding_model
        self.budget = budget

    def embed(self, texts: list[str]) -> tuple[list[np.ndarray], CallRecord]:
        record = CallRecord(
            self.provider.name,
            self.model,
            "",
            purpose="embed",
            items=len(texts),
            input_tokens=sum(estimate_tokens(t) for t in texts),
        )
        if self.budget is not None:
            if not self.budget.allows(record.input_tokens):
                raise self.budget.exhausted(len(texts))  # vectors made so far are kept
            self.budget.add(record.input_tokens)
        values = self.provider.embed(texts, EMBED_DIMENSIONS)
        return [np.asarray(v, dtype=np.float32) for v in values], record


def embedding_text(doc: Doc, body: str | None = None) -> str:
    """What is embedded: title and body (without its template), so the content hash says
    when to embed again."""
    text = doc.body if body is None else body
    return f"{doc.title}\n\n{trim_code_and_logs(text)}"[:EMBED_MAX_CHARS]


def embed_all(
    sessions: sessionmaker[Session], docs: Sequence[Doc], embedder: Vectoriser, run: Counts
) -> tuple[np.ndarray, list[datetime]]:
    """Every doc's vector, embedding only new or changed text, and when each vector was made."""
    with sessions() as session:
        stored = {
            e.item_key: e
            for e in session.scalars(select(Embedding).where(Embedding.model == embedder.model))
        }
    vecs: dict[int, np.ndarray] = {}
    made: dict[int, datetime] = {}
    todo: list[int] = []
    bodies = boilerplate.strip_by_scope([d.key for d in docs], [d.body for d in docs])
    for row, doc in enumerate(docs):
        e = stored.get(doc.key)
        if e is not None and e.content_hash == doc.content_hash:
            vecs[row], made[row] = vectors.unpack(e.vector), e.created_at
            run.reused += 1
        else:
            todo.append(row)
    for start in range(0, len(todo), EMBED_BATCH):
        rows = todo[start : start + EMBED_BATCH]
        got, call = embedder.embed([embedding_text(docs[r], bodies[r]) for r in rows])
        now = store.utcnow()
        with transaction(sessions) as session:  # each batch is kept even if a later one fails
            record_calls(session, [call], now)
            for r, vec in zip(rows, got, strict=True):
                session.merge(
                    Embedding(
                        item_key=docs[r].key,
                        model=embedder.model,
                        content_hash=docs[r].content_hash,
                        vector=vectors.pack(vec),
                        created_at=now,
                    )
                )
                vecs[r], made[r] = vec, now
        run.embedded += len(rows)
        run.calls += 1
    order = range(len(docs))
    return vectors.stack([vecs[r] for r in order]), [made[r] for r in order]
