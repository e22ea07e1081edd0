"""Themes: one problem reported on GitHub and on Stack Overflow is one theme, with a stable id.

`run_themes` plans from the database (which items need a theme, which themes exist), asks a
themer (offline TF-IDF in local.py, or a model in llm.py) for a `ThemePlan`, and applies it.
The rules that keep ids stable live here, whoever plans:
- an item keeps its theme while its content hash is unchanged (it is not even re-planned);
- a theme never disappears: when two converge, the younger is merged into the older
  (merged_into/merged_at), its items follow, and the older id lives on;
- a new item that matches an old theme joins it, however long that theme has been quiet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from triage.analysis.summaries import summaries
from triage.analysis.themes.model import ExistingTheme, ThemeDoc, ThemePlan, Themer
from triage.context import Context
from triage.db import store
from triage.db.engine import transaction
from triage.db.llm_calls import record_calls
from triage.db.schema import Item, Theme, ThemeItem
from triage.errors import ConfigError
from triage.providers import spec_for
from triage.providers.base import Embedder, JsonModel

if TYPE_CHECKING:
    from triage.analysis.embeddings import ModelEmbedder

LEFTOVER_CURSOR = "themes:leftover"


@dataclass
class ThemeRun:
    """What one `triage themes` run did."""

    pending: int = 0
    assigned: int = 0
    joined_existing: int = 0
    new_themes: int = 0
    merged: int = 0
    left_over: int = 0
    rejected: int = 0
    calls: int = 0
    input_tokens: int = 0
    failed: int = 0  # items a failed call left for the next run
    embedded: int = 0  # vectors made for offline themes ([themes] embedding_provider)
    reused: int = 0  # ...and vectors already stored for the same text
    skipped: bool = False  # nothing new since the last run


# -- reading -------------------------------------------------------------------------------
def _docs(session: Session, items: Sequence[Item]) -> list[ThemeDoc]:
    sums = summaries(session, {i.key: i.content_hash for i in items})
    return [
        ThemeDoc(
            i.key,
            i.source,
            i.title,
            sums.get(i.key, ""),
            i.body or "",
            i.content_hash,
            i.created_at,
        )
        for i in items
    ]


def pending_docs(session: Session, since: datetime) -> list[ThemeDoc]:
    """Items active since `since` that have no theme for their current text."""
    stmt = (
        select(Item)
        .outerjoin(ThemeItem, ThemeItem.item_key == Item.key)
        .where(
            Item.updated_at >= since,
            Item.is_pull_request.is_(False),
            (ThemeItem.item_key.is_(None)) | (ThemeItem.content_hash != Item.content_hash),
        )
        .order_by(Item.created_at, Item.key)
    )
    return _docs(session, list(session.scalars(stmt)))


def live_themes(session: Session, members_per_theme: int = 0) -> list[ExistingTheme]:
    """Every theme not merged away, oldest first, with up to N of its newest members."""
    themes = {
        t.id: ExistingTheme(t.id, t.title, t.description, list(t.terms or []), t.created_at)
        for t in session.scalars(
            select(Theme).where(Theme.merged_into.is_(None)).order_by(Theme.id)
        )
    }
    for tid, n in session.execute(
        select(ThemeItem.theme_id, func.count()).group_by(ThemeItem.theme_id)
    ):
        if tid in themes:
            themes[tid].size = n
    if members_per_theme and themes:
        rank = (
            func.row_number()
            .over(
                partition_by=ThemeItem.theme_id,
                order_by=(Item.created_at.desc(), Item.key.desc()),
            )
            .label("rank")
        )
        ranked = (
            select(ThemeItem.theme_id, Item.key, rank)
            .join(Item, Item.key == ThemeItem.item_key)
            .subquery()
        )
        picked = session.execute(
            select(ranked.c.theme_id, ranked.c.key).where(ranked.c.rank <= members_per_theme)
        ).all()
        owner = {key: tid for tid, key in picked}
        items = list(store.iter_items(session, keys=list(owner)))
        for doc in _docs(session, items):
            if owner[doc.key] in themes:
                themes[owner[doc.key]].members.append(doc)
    return list(themes.values())


# -- writing -------------------------------------------------------------------------------
def merge_theme(session: Session, source_id: int, into_id: int, now: datetime) -> bool:
    """Record that `source_id` converged into `into_id`; its items and earlier merges follow."""
    target = session.get(Theme, live_theme_id(session, into_id))
    source = session.get(Theme, source_id)
    if target is None or source is None or source.merged_into is not None or source is target:
        return False
    source.merged_into, source.merged_at, source.updated_at = target.id, now, now
    target.updated_at = now
    session.execute(
        update(ThemeItem).where(ThemeItem.theme_id == source.id).values(theme_id=target.id)
    )
    session.execute(
        update(Theme).where(Theme.merged_into == source.id).values(merged_into=target.id)
    )
    return True


def apply_plan(
    session: Session, plan: ThemePlan, docs: dict[str, ThemeDoc], provider: str, now: datetime
) -> ThemeRun:
    """Create the plan's new themes, store assignments with their content hash, record merges."""
    result = ThemeRun(rejected=plan.rejected)
    ids: dict[str, int] = {}
    for new in plan.new:
        theme = Theme(
            title=new.title[:300],
            description=new.description,
            terms=new.terms,
            provider=provider,
            created_at=now,
            updated_at=now,
        )
        session.add(theme)
        session.flush()
        ids[new.ref] = theme.id
        result.new_themes += 1
    current = {
        row.item_key: row
        for row in session.scalars(select(ThemeItem).where(ThemeItem.item_key.in_(list(docs))))
    }
    touched: set[int] = set()
    for key, target in plan.assign.items():
        doc = docs.get(key)
        tid = ids.get(target) if isinstance(target, str) else target
        if doc is None or tid is None:
            continue
        row = current.get(key)
        if row is None:
            session.add(
                ThemeItem(
                    item_key=key, theme_id=tid, content_hash=doc.content_hash, assigned_at=now
                )
            )
        else:
            row.theme_id, row.content_hash, row.assigned_at = tid, doc.content_hash, now
        touched.add(tid)
        result.assigned += 1
        result.joined_existing += not isinstance(target, str)
    if touched:
        session.execute(update(Theme).where(Theme.id.in_(touched)).values(updated_at=now))
    for source_id, into_id in plan.merges:
        result.merged += merge_theme(session, source_id, into_id, now)
    record_calls(session, plan.calls, now)
    result.calls += len(plan.calls)
    result.input_tokens += sum(call.input_tokens for call in plan.calls)
    return result


# -- the run -------------------------------------------------------------------------------
def run_themes(
    sessions: sessionmaker[Session],
    since: datetime,
    themer: Themer,
    provider: str,
    members_per_theme: int = 0,
) -> ThemeRun:
    """Theme every item active since `since` that lacks a theme for its current text."""
    now = store.utcnow()
    with transaction(sessions) as session:
        docs = pending_docs(session, since)
        leftover = store.get_cursor(session, LEFTOVER_CURSOR)
        known = (leftover.state if leftover else {}) or {}
        if (
            docs
            and known.get("provider") == provider
            and all(known.get("items", {}).get(d.key) == d.content_hash for d in docs)
        ):
            # Every pending item was looked at last time and fitted no theme; only something
            # new can change that, so spare the model call.
            return ThemeRun(pending=len(docs), left_over=len(docs), skipped=True)
        themes = live_themes(session, members_per_theme) if docs else []
    if not docs:
        return ThemeRun()
    plan = themer(docs, themes)
    by_key = {d.key: d for d in docs}
    with transaction(sessions) as session:
        result = apply_plan(session, plan, by_key, provider, now)
        left = {
            d.key: d.content_hash
            for d in docs
            if d.key not in plan.assign and d.key not in plan.failed
        }
        store.set_cursor(session, LEFTOVER_CURSOR, None, {"provider": provider, "items": left})
    result.pending, result.left_over, result.failed = len(docs), len(left), len(plan.failed)
    if plan.exhausted is not None:
        raise plan.exhausted  # after saving what was planned: the rest waits for the budget
    return result


# -- what the digest reads -----------------------------------------------------------------
def theme_counts(session: Session, start: datetime, end: datetime) -> dict[int, dict[str, int]]:
    """Items created in [start, end) per live theme and source.

    Returns `{theme_id: {"github": n, "stackexchange": m}}` (a source is present only when it
    has items). Merged themes' items count under the theme they were merged into, so comparing
    two periods' counts says whether a theme is new, growing or shrinking.
    """
    out: dict[int, dict[str, int]] = defaultdict(dict)
    rows = session.execute(
        select(ThemeItem.theme_id, Item.source, func.count())
        .join(Item, Item.key == ThemeItem.item_key)
        .where(Item.created_at >= start, Item.created_at < end)
        .group_by(ThemeItem.theme_id, Item.source)
    )
    for tid, source, n in rows:
        out[tid][source] = n
    return dict(out)


def live_theme_id(session: Session, theme_id: int) -> int:
    """Follow merges from an id someone kept (a link, a digest) to the theme that lives on."""
    seen: set[int] = set()
    current = theme_id
    while current not in seen:
        seen.add(current)
        nxt = session.scalar(select(Theme.merged_into).where(Theme.id == current))
        if nxt is None:
            return current
        current = nxt
    return current


def run_for_context(ctx: Context, since: datetime, provider: str | None = None) -> ThemeRun:
    """Run themes with the named provider (default: [llm] provider).

    A provider with a JSON model plans with it; one without (local) themes offline, placing
    items by words and, when [themes] embedding_provider names a provider that embeds, by
    that provider's embeddings too.
    """
    from triage.analysis import embeddings  # numpy/scikit-learn: only when themes run
    from triage.analysis.themes import llm, local

    chosen = ctx.provider(provider)
    if isinstance(chosen, JsonModel):
        themer = llm.themer_for(chosen, ctx.budget(), ctx.config)
        return run_themes(ctx.sessions, since, themer, chosen.name)
    size = ctx.config.themes.min_cluster_size
    embedder = offline_embedder(ctx)
    tally = ThemeRun()

    def offline(docs: list[ThemeDoc], themes: list[ExistingTheme]) -> ThemePlan:
        semantic = None
        if embedder is not None:
            every = docs + [m for t in themes for m in t.members]
            semantic, _ = embeddings.embed_all(ctx.sessions, every, embedder, tally)
        return local.plan_local(docs, themes, size, semantic)

    result = run_themes(ctx.sessions, since, offline, chosen.name, local.MEMBERS_PER_THEME)
    result.embedded, result.reused = tally.embedded, tally.reused
    result.calls += tally.calls
    return result


def offline_embedder(ctx: Context) -> ModelEmbedder | None:
    """The embeddings offline themes use besides words, if [themes] embedding_provider is set."""
    name = ctx.config.themes.embedding_provider
    if not name:
        return None
    chosen = ctx.provider(name)
    if not isinstance(chosen, Embedder):
        setting = spec_for(name).embed_setting
        hint = f"set {setting}" if setting else "name a provider that embeds"
        raise ConfigError(
            f"[themes] embedding_provider = '{name}' has no embeddings; {hint},"
            " or leave it empty to theme by words only"
        )
    from triage.analysis.embeddings import ModelEmbedder

    return ModelEmbedder(chosen, ctx.budget())
