"""Possible duplicates among open items of every source: nearest neighbours, then a judgement.

Candidates come from vectors (a model's embeddings, stored per content hash so unchanged text
is never embedded twice; offline, TF-IDF). A judge (a model, or offline the similarity itself)
gives each candidate pair a confidence and a one-line reason. Pairs at or above
[themes] duplicate_min_confidence are stored once (key_a < key_b). Nothing is ever closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from triage.analysis import vectors
from triage.analysis.duplicates import llm, local
from triage.analysis.duplicates.model import (
    OFFLINE_MODEL,
    Candidate,
    DupDoc,
    Judge,
    Judged,
    Link,
)
from triage.analysis.embeddings import ModelEmbedder, Vectoriser, embed_all
from triage.analysis.summaries import summaries
from triage.context import Context
from triage.db import related, store
from triage.db.engine import transaction
from triage.db.llm_calls import record_calls
from triage.db.schema import Duplicate, Item
from triage.errors import ConfigError
from triage.providers import PROVIDERS, offline
from triage.providers.base import Embedder, JsonModel


@dataclass
class DuplicateRun:
    open_items: int = 0
    embedded: int = 0
    reused: int = 0
    candidates: int = 0
    known: int = 0
    judged: int = 0
    linked: int = 0
    failed: int = 0
    calls: int = 0
    links: list[Link] = field(default_factory=list)


def open_docs(session: Session) -> list[DupDoc]:
    items = list(
        session.scalars(
            select(Item)
            .where(Item.state == "open", Item.is_pull_request.is_(False))
            .order_by(Item.key)
        )
    )
    sums = summaries(session, {i.key: i.content_hash for i in items})
    return [
        DupDoc(i.key, i.source, i.title, sums.get(i.key, ""), i.body or "", i.content_hash)
        for i in items
    ]


# -- candidates and judgement --------------------------------------------------------------
def candidates(
    matrix: vectors.Matrix,
    docs: Sequence[DupDoc],
    k: int,
    min_similarity: float,
    rows: Sequence[int] | None = None,
) -> list[Candidate]:
    """Each (given) row's nearest neighbours above the threshold, one candidate per pair."""
    pairs: dict[tuple[int, int], float] = {}
    for i, j, sim in vectors.neighbours(matrix, k, min_similarity, rows=rows):
        a, b = (i, j) if docs[i].key < docs[j].key else (j, i)
        pairs[(a, b)] = max(sim, pairs.get((a, b), 0.0))
    return [
        Candidate(docs[a], docs[b], sim)
        for (a, b), sim in sorted(pairs.items(), key=lambda kv: -kv[1])
    ]


def neighbour_keys(
    matrix: vectors.Matrix, docs: Sequence[DupDoc], rows: Sequence[int] | None
) -> dict[str, list[tuple[str, float]]]:
    """The (given) rows' nearest neighbours by key, nearest first (export `related`)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for i, j, sim in vectors.neighbours(matrix, related.PER_ITEM, 0.0, rows=rows):
        out.setdefault(docs[i].key, []).append((docs[j].key, sim))
    return {k: sorted(v, key=lambda ks: -ks[1]) for k, v in out.items()}


def _insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(Duplicate)


def save_links(
    session: Session, links: Sequence[Link], provider: str, model: str, now: datetime
) -> int:
    """Insert links not yet stored; a pair already linked is left as it is (re-runs add nothing)."""
    if not links:
        return 0
    rows = [
        {
            "key_a": link.key_a,
            "key_b": link.key_b,
            "similarity": link.similarity,
            "confidence": link.confidence,
            "reason": link.reason[:500],
            "provider": provider,
            "model": model,
            "created_at": now,
        }
        for link in links
    ]
    stmt = (
        _insert(session)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["key_a", "key_b"])
        .returning(Duplicate.id)  # rowcount is not reliable for multi-row inserts everywhere
    )
    return len(session.execute(stmt).all())


def known_pairs(session: Session, keys: set[str]) -> set[tuple[str, str]]:
    rows = session.execute(select(Duplicate.key_a, Duplicate.key_b))
    return {(a, b) for a, b in rows if a in keys or b in keys}


# -- the run -------------------------------------------------------------------------------
@dataclass
class Settings:
    neighbours: int
    min_similarity: float
    min_confidence: float

    @classmethod
    def from_context(cls, ctx: Context) -> Settings:
        t = ctx.config.themes
        return cls(t.duplicate_neighbours, t.duplicate_min_similarity, t.duplicate_min_confidence)


def run_duplicates(
    sessions: sessionmaker[Session],
    settings: Settings,
    judge: Judge,
    provider: str,
    model: str,
    embedder: Vectoriser | None = None,
) -> DuplicateRun:
    """Find, judge and store possible duplicates among open items."""
    run = DuplicateRun()
    with sessions() as session:
        docs = open_docs(session)
        cursor = store.get_cursor(session, f"duplicates:{provider}:{model}")
    run.open_items = len(docs)
    if len(docs) < 2:
        return run
    rows: Sequence[int] | None = None
    if embedder is None:
        space = local.tfidf_space(docs)
        near = local.nearest(space.matrix, max(settings.neighbours, related.PER_ITEM))
        found = local.offline_candidates(space, docs, near)
        nearby = {
            docs[i].key: [(docs[j].key, sim) for j, sim in row[: related.PER_ITEM]]
            for i, row in enumerate(near)
            if row
        }
        considered = store.utcnow()
    else:
        matrix, made = embed_all(sessions, docs, embedder, run)
        if cursor is not None and cursor.value:
            # A pair of two items whose vectors took part in the last complete run was judged
            # then: only items embedded since need neighbours (and a judge's time).
            last = datetime.fromisoformat(cursor.value)
            rows = [r for r, when in enumerate(made) if when > last]
        # Every vector made up to now takes part in this run's candidates.
        considered = store.utcnow()
        found = candidates(matrix, docs, settings.neighbours, settings.min_similarity, rows)
        nearby = neighbour_keys(matrix, docs, rows)
    with sessions() as session:
        known = known_pairs(session, {d.key for d in docs})
    todo = [c for c in found if (c.a.key, c.b.key) not in known]
    run.candidates, run.known = len(found), len(found) - len(todo)
    judged = judge(todo) if todo else Judged()
    run.judged, run.failed = len(judged.links), judged.failed
    keep = [link for link in judged.links if link.confidence >= settings.min_confidence]
    now = store.utcnow()
    with transaction(sessions) as session:
        run.linked = save_links(session, keep, provider, model, now)
        related.save(session, nearby, [d.key for d in docs])
        record_calls(session, judged.calls, now)
        if not judged.failed:
            store.set_cursor(session, f"duplicates:{provider}:{model}", considered.isoformat())
    run.calls += len(judged.calls)
    run.links = sorted(keep, key=lambda link: -link.confidence)
    if judged.exhausted is not None:
        raise judged.exhausted  # links found so far are stored; the rest waits for the budget
    return run


def run_for_context(ctx: Context, provider: str | None = None) -> DuplicateRun:
    """Run duplicates with the named provider (default: [llm] provider).

    A provider with a JSON model judges pairs found with its embeddings; one without a JSON
    model (local) finds and judges offline. A JSON model without embeddings is refused: its
    judgements would be stored under the name of a model that did not find the pairs.
    """
    chosen = ctx.provider(provider)
    settings = Settings.from_context(ctx)
    if not isinstance(chosen, JsonModel):
        return run_duplicates(
            ctx.sessions, settings, local.judge_offline, chosen.name, OFFLINE_MODEL
        )
    if not isinstance(chosen, Embedder):
        setting = PROVIDERS[chosen.name].embed_setting
        if setting:
            hint = f"set {setting}, or run `triage duplicates --provider {offline().name}`"
        else:
            always = ", ".join(
                n for n, s in PROVIDERS.items() if "embed" in s.capabilities and not s.embed_setting
            )
            hint = f"run `triage duplicates --provider {offline().name}` (or {always})"
        raise ConfigError(
            f"the {chosen.name} provider has no embeddings to find duplicates with; {hint}"
        )
    budget = ctx.budget()  # one budget for embeddings and judgements
    judge = llm.judge_for(chosen, budget, ctx.config.llm)
    embedder = ModelEmbedder(chosen, budget)
    return run_duplicates(ctx.sessions, settings, judge, chosen.name, chosen.model, embedder)
