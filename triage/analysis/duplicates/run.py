"""Possible duplicates among open items of every source: nearest neighbours, then a judgement.

Candidates come from vectors stored per content hash (a model's embeddings; offline, hashed
word counts weighed by TF-IDF), so unchanged text is never read or embedded again. Each open
item's nearest neighbours are kept (table `neighbours`): a run searches only items that are new
or changed, or whose neighbours changed or closed, and older items take a new one into their
lists when it comes closer. A judge (a model, or offline the similarity itself) gives each
new candidate pair a confidence and a one-line reason; pairs at or above
[themes] duplicate_min_confidence are stored once (key_a < key_b). Nothing is ever closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from triage.analysis import item_vectors, nearest, words
from triage.analysis.duplicates import llm, local
from triage.analysis.duplicates.model import (
    OFFLINE_MODEL,
    Candidate,
    DupDoc,
    Judge,
    Judged,
    Link,
)
from triage.analysis.embeddings import EMBED_BATCH, ModelEmbedder, Vectoriser, embed_maker
from triage.analysis.item_refs import ItemRef, ItemText, Progress
from triage.analysis.item_vectors import Templates
from triage.context import Context
from triage.db import related, store
from triage.db.engine import transaction
from triage.db.llm_calls import record_calls
from triage.db.schema import Duplicate, Item
from triage.errors import ConfigError
from triage.providers import PROVIDERS, offline
from triage.providers.base import Embedder, JsonModel

SPACE_CURSOR = "duplicates:space"  # which vectors the stored neighbours were found with
JUDGE_CHUNK = 1000  # candidate pairs read, judged and stored at a time
KNOWN_BY_KEY = 20_000  # up to this many items, their stored links are looked up by key
LINKS_SHOWN = 100  # the surest new links a run returns (all are stored)


@dataclass
class DuplicateRun:
    open_items: int = 0
    embedded: int = 0
    reused: int = 0
    searched: int = 0  # items that looked for neighbours this run
    candidates: int = 0
    known: int = 0
    judged: int = 0
    linked: int = 0
    failed: int = 0
    calls: int = 0
    links: list[Link] = field(default_factory=list)  # the surest new ones (LINKS_SHOWN)


def open_refs(session: Session) -> list[ItemRef]:
    rows = session.execute(
        select(Item.key, Item.source, Item.content_hash, Item.created_at)
        .where(Item.state == "open", Item.is_pull_request.is_(False))
        .order_by(Item.key)
    )
    return [ItemRef(*row) for row in rows]


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
        .on_conflict_do_nothing(index_elements=["key_a", "key_b"])
        .returning(Duplicate.id)  # rowcount is not reliable for multi-row inserts everywhere
    )
    # Rows given apart from the statement: SQLAlchemy sends them in batches that stay under
    # the database's limit on bound parameters (SQLite's is 32,766).
    return len(session.execute(stmt, rows).all())


def known_pairs(session: Session, keys: Sequence[str]) -> set[tuple[str, str]]:
    """Stored links with one of these items (all of them when nearly every item is asked)."""
    if len(keys) > KNOWN_BY_KEY:
        return {(a, b) for a, b in session.execute(select(Duplicate.key_a, Duplicate.key_b))}
    out: set[tuple[str, str]] = set()
    for chunk in item_vectors.chunks(keys):
        rows = session.execute(
            select(Duplicate.key_a, Duplicate.key_b).where(
                Duplicate.key_a.in_(list(chunk)) | Duplicate.key_b.in_(list(chunk))
            )
        )
        out.update((a, b) for a, b in rows)
    return out


# -- neighbours ----------------------------------------------------------------------------
Lists = dict[int, list[tuple[int, float]]]


@dataclass
class Pair:
    a: int  # rows, keys[a] < keys[b]
    b: int
    similarity: float
    mutual: bool


def _rows_to_search(
    session: Session,
    keys: Sequence[str],
    made: np.ndarray,
    last: datetime | None,
) -> np.ndarray:
    """Rows whose vector is new since the last complete run, or whose neighbours changed or
    closed since; every row when there was none (or it used other vectors)."""
    if last is None:
        return np.arange(len(keys))
    new = np.flatnonzero(made > np.datetime64(last, "us"))
    stale = related.pointing_at(session, [keys[r] for r in new.tolist()])
    stale |= related.pointing_at_closed(session)
    position = {k: n for n, k in enumerate(keys)}
    extra = [position[k] for k in stale if k in position]
    return np.union1d(new, np.asarray(extra, dtype=np.int64)).astype(np.int64)


def _update_lists(
    session: Session, keys: Sequence[str], found: nearest.Found, searched: np.ndarray, k: int
) -> tuple[Lists, set[int]]:
    """The searched rows' new lists, the lists of the rows they found, and which of those
    changed: an older item takes a new one in when it is nearer than its current k-th."""
    position = {key: n for n, key in enumerate(keys)}
    lists: Lists = {int(r): [] for r in searched}
    for r, c, sim in zip(
        found.rows.tolist(), found.cols.tolist(), found.sims.tolist(), strict=True
    ):
        lists[r].append((c, sim))
    others = sorted({c for c in found.cols.tolist() if c not in lists})
    stored = related.lists(session, [keys[c] for c in others])
    for c in others:
        kept = stored.get(keys[c], [])
        lists[c] = [(position[o], sim) for o, sim in kept if o in position]
    changed: set[int] = set()
    searched_set = set(lists) - set(others)
    for r, c, sim in zip(
        found.rows.tolist(), found.cols.tolist(), found.sims.tolist(), strict=True
    ):
        if c in searched_set:
            continue
        near = [(o, s) for o, s in lists[c] if o != r]
        if len(near) < k or sim > near[-1][1]:
            near.append((r, sim))
            near.sort(key=lambda os: -os[1])
            lists[c] = near[:k]
            changed.add(c)
    return lists, changed


def _pairs(
    keys: Sequence[str], lists: Lists, searched: set[int], changed: set[int], floor: float
) -> list[Pair]:
    """Pairs with a searched row, best first; `mutual` when each is the other's clearly nearest
    neighbour (local.MARGIN over either's runner-up)."""

    def best(r: int) -> int:
        return lists[r][0][0] if lists.get(r) else -1

    def runner_up(r: int) -> float:
        near = lists.get(r, [])
        return near[1][1] if len(near) > 1 else 0.0

    sims: dict[tuple[int, int], float] = {}
    for r in sorted(searched | changed):
        for c, sim in lists.get(r, []):
            if r not in searched and c not in searched:
                continue  # an old pair: judged when one of them was new
            a, b = (r, c) if keys[r] < keys[c] else (c, r)
            sims[(a, b)] = max(sim, sims.get((a, b), 0.0))
    out = []
    for (a, b), sim in sorted(sims.items(), key=lambda kv: (-kv[1], kv[0])):
        if sim < floor:
            continue
        mutual = (
            best(a) == b and best(b) == a and sim - max(runner_up(a), runner_up(b)) >= local.MARGIN
        )
        out.append(Pair(a, b, sim, mutual))
    return out


def _doc(text: ItemText) -> DupDoc:
    return DupDoc(text.key, text.source, text.title, text.summary, text.body, text.content_hash)


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
    progress: Progress | None = None,
) -> DuplicateRun:
    """Find, judge and store possible duplicates among open items."""
    run = DuplicateRun()
    run_cursor = f"duplicates:{provider}:{model}"
    with sessions() as session:
        refs = open_refs(session)
        cursor = store.get_cursor(session, run_cursor)
        space_row = store.get_cursor(session, SPACE_CURSOR)
    run.open_items = len(refs)
    if len(refs) < 2:
        return run
    keys = [r.key for r in refs]
    templates = Templates(sessions)
    matrix: object
    if embedder is None:
        space = f"{provider}:{item_vectors.WORDS_DUPLICATES}"
        item_vectors.ensure(
            sessions,
            refs,
            item_vectors.WORDS_DUPLICATES,
            item_vectors.word_maker(item_vectors.WORDS_DUPLICATES),
            templates,
            progress=progress,
        )
        counted, made = item_vectors.load_words(sessions, keys, item_vectors.WORDS_DUPLICATES)
        matrix = words.weigh(counted)
        del counted
        floor, candidate_floor = local.MIN_SIMILARITY, 0.0
    else:
        space = f"{provider}:{embedder.model}"
        got = item_vectors.ensure(
            sessions,
            refs,
            embedder.model,
            embed_maker(embedder),
            templates,
            batch=EMBED_BATCH,
            progress=progress,
        )
        run.embedded, run.reused, run.calls = got.made, got.reused, got.calls
        matrix, made = item_vectors.load_dense(sessions, keys, embedder.model)
        floor, candidate_floor = 0.0, settings.min_similarity
    # Every vector made up to now takes part in this run.
    considered = store.utcnow()
    same_space = space_row is not None and space_row.value == space
    last = (
        datetime.fromisoformat(cursor.value)
        if same_space and cursor is not None and cursor.value
        else None
    )
    with sessions() as session:
        rows = _rows_to_search(session, keys, made, last)
    run.searched = len(rows)
    k = max(settings.neighbours, related.PER_ITEM)

    done = [0]

    def searching(step: int) -> None:
        done[0] += step
        if progress:
            progress("neighbours", done[0], len(rows))

    found = nearest.search(matrix, k, floor, rows, searching)
    # Offline, the words two items share explain a pair; embeddings explain nothing (a model
    # judges), so 600 MB of them are let go before judging.
    words_matrix = matrix if embedder is None else None
    del matrix
    with transaction(sessions) as session:
        lists, changed = _update_lists(session, keys, found, rows, k)
        searched = {int(r) for r in rows}
        touched = searched | changed
        if last is None:
            related.clear(session)
        related.drop_not_open(session)
        related.replace(
            session,
            {keys[r]: [(keys[c], sim) for c, sim in lists[r]] for r in touched},
            cleared=last is None,
        )
        store.set_cursor(session, SPACE_CURSOR, space)
        # Every candidate pair has a searched item.
        known = known_pairs(session, [keys[r] for r in sorted(searched)])
    del found
    every = _pairs(keys, lists, searched, changed, candidate_floor)
    pairs = [p for p in every if (keys[p.a], keys[p.b]) not in known]
    run.candidates, run.known = len(every), len(every) - len(pairs)
    del every, known
    if embedder is None:
        # Offline the confidence is the similarity itself: only pairs that reach the threshold
        # are read and explained.
        pairs = [
            p
            for p in pairs
            if local.confidence_of(p.similarity, p.mutual) >= settings.min_confidence
        ]
    failed, exhausted = 0, None
    for start in range(0, len(pairs), JUDGE_CHUNK):
        chunk = pairs[start : start + JUDGE_CHUNK]
        texts = item_vectors.read_texts(
            sessions, sorted({keys[r] for p in chunk for r in (p.a, p.b)}), templates
        )
        named = local.words_in(list(texts.values())) if embedder is None else {}
        candidates = []
        for p in chunk:
            a, b = texts.get(keys[p.a]), texts.get(keys[p.b])
            if a is None or b is None:
                continue
            shared = (
                local.shared_words(words_matrix, p.a, p.b, named[a.key], named[b.key])
                if words_matrix is not None
                else []
            )
            candidates.append(Candidate(_doc(a), _doc(b), p.similarity, shared, p.mutual))
        judged = judge(candidates) if candidates else Judged()
        run.judged += len(judged.links)
        failed += judged.failed
        keep = [link for link in judged.links if link.confidence >= settings.min_confidence]
        now = store.utcnow()
        with transaction(sessions) as session:
            run.linked += save_links(session, keep, provider, model, now)
            record_calls(session, judged.calls, now)
        run.calls += len(judged.calls)
        # Every link is stored; the run keeps only the surest to show (690,000 links of a
        # first run over 200,000 items would otherwise be held to the end).
        run.links = sorted(run.links + keep, key=lambda link: -link.confidence)[:LINKS_SHOWN]
        if judged.exhausted is not None:
            exhausted = judged.exhausted
            failed += len(pairs) - start - len(chunk)
            break
        if progress:
            progress("judging", min(start + JUDGE_CHUNK, len(pairs)), len(pairs))
    run.failed = failed
    if not failed and exhausted is None:
        with transaction(sessions) as session:
            store.set_cursor(session, run_cursor, considered.isoformat())
    if exhausted is not None:
        raise exhausted  # links found so far are stored; the rest waits for the budget
    return run


def run_for_context(
    ctx: Context, provider: str | None = None, progress: Progress | None = None
) -> DuplicateRun:
    """Run duplicates with the named provider (default: [llm] provider).

    A provider with a JSON model judges pairs found with its embeddings; one without a JSON
    model (local) finds and judges offline. A JSON model without embeddings is refused: its
    judgements would be stored under the name of a model that did not find the pairs.
    """
    chosen = ctx.provider(provider)
    settings = Settings.from_context(ctx)
    if not isinstance(chosen, JsonModel):
        return run_duplicates(
            ctx.sessions, settings, local.judge_offline, chosen.name, OFFLINE_MODEL, None, progress
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
    return run_duplicates(
        ctx.sessions, settings, judge, chosen.name, chosen.model, embedder, progress
    )
