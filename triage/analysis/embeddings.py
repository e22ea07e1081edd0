"""A provider's embeddings of items, stored per content hash: shared by duplicates and themes.

Both embed the same text (title and body without its template), so a vector made for one is
reused by the other and unchanged text is never embedded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from triage.analysis import vectors
from triage.analysis.item_refs import ItemText, Ref
from triage.analysis.item_vectors import Maker, Templates, ensure, load_dense
from triage.db.llm_calls import Budget
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


def embed_maker(embedder: Vectoriser) -> Maker:
    """Stored embeddings of items' text, one call per batch."""

    def make(texts: list[ItemText]) -> tuple[list[bytes], list[CallRecord]]:
        got, call = embedder.embed([embedding_text(t, t.stripped) for t in texts])
        return [vectors.pack(v) for v in got], [call]

    return make


def embed_all(
    sessions: sessionmaker[Session],
    refs: Sequence[Ref],
    embedder: Vectoriser,
    run: Counts,
    templates: Templates | None = None,
) -> np.ndarray:
    """Every item's vector (rows in order, L2-normalised), embedding only new or changed text."""
    got = ensure(
        sessions,
        refs,
        embedder.model,
        embed_maker(embedder),
        templates or Templates(sessions),
        batch=EMBED_BATCH,
    )
    run.embedded += got.made
    run.reused += got.reused
    run.calls += got.calls
    matrix, _ = load_dense(sessions, [r.key for r in refs], embedder.model)
    return matrix
