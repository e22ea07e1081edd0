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

from triage.analysis.item_refs import ItemRef, Progress
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
PLAN_CHUNK = 5000  # items planned at a time
REVISIT = 2000  # waiting items (that fit no theme yet) looked at again beside new ones
MEMBER_ROWS = 20_000  # members placing existing themes, in all
MIN_MEMBERS = 3


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


def pending_refs(session: Session, since: datetime) -> list[ItemRef]:
    """Items active since `since` that have no theme for their current text, oldest first."""
    stmt = (
        select(Item.key, Item.source, Item.content_hash, Item.created_at)
        .outerjoin(ThemeItem, ThemeItem.item_key == Item.key)
        .where(
            Item.updated_at >= since,
            Item.is_pull_request.is_(False),
            (ThemeItem.item_key.is_(None)) | (ThemeItem.content_hash != Item.content_hash),
        )
        .order_by(Item.created_at, Item.key)
    )
    return [ItemRef(*row) for row in session.execute(stmt)]


def read_docs(session: Session, keys: Sequence[str]) -> list[ThemeDoc]:
    """These items as a themer sees them, in the order given."""
    found: dict[str, Item] = {}
    for start in range(0, len(keys), 900):
        chunk = list(keys[start : start + 900])
        found.update((i.key, i) for i in session.scalars(select(Item).where(Item.key.in_(chunk))))
    return _docs(session, [found[k] for k in keys if k in found])


def live_themes(session: Session, members_per_theme: int = 0) -> list[ExistingTheme]:
    """Every theme not merged away, oldest first, with up to N of its newest members.

    With many themes each gets fewer members (MEMBER_ROWS in all, at least MIN_MEMBERS each),
    so the vectors a run holds for them stay bounded however many themes there are.
    """
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
        members_per_theme = min(
            members_per_theme, max(MIN_MEMBERS, MEMBER_ROWS // max(len(themes), 1))
        )
        rank = (
            func.row_number()
            .over(
                partition_by=ThemeItem.theme_id,
                order_by=(Item.created_at.desc(), Item.key.desc()),
            )
            .label("rank")
        )
        ranked = (
            select(
                ThemeItem.theme_id,
                Item.key,
                Item.source,
                Item.content_hash,
                Item.created_at,
                rank,
            )
            .join(Item, Item.key == ThemeItem.item_key)
            .subquery()
        )
        picked = session.execute(
            select(
                ranked.c.theme_id,
                ranked.c.key,
                ranked.c.source,
                ranked.c.content_hash,
                ranked.c.created_at,
            )
            .where(ranked.c.rank <= members_per_theme)
            .order_by(ranked.c.theme_id, ranked.c.key)
        )
        for tid, key, source, chash, created in picked:
            if tid in themes:
                themes[tid].members.append(ItemRef(key, source, chash, created))
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
def _add(total: ThemeRun, part: ThemeRun) -> None:
    for name in ("assigned", "joined_existing", "new_themes", "merged", "rejected"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.calls += part.calls
    total.input_tokens += part.input_tokens


def run_themes(
    sessions: sessionmaker[Session],
    since: datetime,
    themer: Themer,
    provider: str,
    members_per_theme: int = 0,
    progress: Progress | None = None,
    chunk_size: int = PLAN_CHUNK,
) -> ThemeRun:
    """Theme every item active since `since` that lacks a theme for its current text.

    Items that fit no theme last time wait (cursor LEFTOVER_CURSOR); only something new can
    change that, so a run with nothing new spares the work, and otherwise the newest REVISIT
    of them are looked at again beside the new ones. New items are planned `chunk_size` at a
    time, each part stored before the next: memory stays bounded and an interruption keeps
    what was done.
    """
    now = store.utcnow()
    with sessions() as session:
        pending = pending_refs(session, since)
        row = store.get_cursor(session, LEFTOVER_CURSOR)
    if not pending:
        return ThemeRun()
    state = (row.state if row else {}) or {}
    waiting: dict[str, str] = state.get("items", {}) if state.get("provider") == provider else {}
    new = [r for r in pending if waiting.get(r.key) != r.content_hash]
    old = [r for r in pending if waiting.get(r.key) == r.content_hash]
    del waiting
    if not new:
        return ThemeRun(pending=len(pending), left_over=len(pending), skipped=True)
    left = {r.key: r.content_hash for r in old}
    result = ThemeRun(pending=len(pending))
    # Items of a part that fit no theme are carried into the next part (the newest REVISIT),
    # where a report of the same problem may have arrived; the first part carries the newest
    # of those that were waiting before this run.
    carry: list[ItemRef] = old[-REVISIT:]
    done = 0
    for start in range(0, len(new), chunk_size):
        fresh = new[start : start + chunk_size]
        chunk = sorted(carry + fresh, key=lambda r: (r.created_at, r.key))
        with sessions() as session:
            docs = read_docs(session, [r.key for r in chunk])
            themes = live_themes(session, members_per_theme)
        plan = themer(docs, themes)
        with transaction(sessions) as session:
            part = apply_plan(session, plan, {d.key: d for d in docs}, provider, now)
            for d in docs:
                if d.key in plan.assign or d.key in plan.failed:
                    left.pop(d.key, None)
                else:
                    left[d.key] = d.content_hash
            store.set_cursor(session, LEFTOVER_CURSOR, None, {"provider": provider, "items": left})
        carry = [r for r in chunk if r.key in left][-REVISIT:]
        _add(result, part)
        result.failed += len(plan.failed)
        result.left_over = len(left)
        if plan.exhausted is not None:
            raise plan.exhausted  # after saving what was planned: the rest waits for the budget
        done += len(fresh)
        if progress:
            progress("themes", done, len(new))
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


def run_for_context(
    ctx: Context, since: datetime, provider: str | None = None, progress: Progress | None = None
) -> ThemeRun:
    """Run themes with the named provider (default: [llm] provider).

    A provider with a JSON model plans with it; one without (local) themes offline, placing
    items by words and, when [themes] embedding_provider names a provider that embeds, by
    that provider's embeddings too.
    """
    from triage.analysis.themes import llm, local  # numpy/scikit-learn: only when themes run

    chosen = ctx.provider(provider)
    if isinstance(chosen, JsonModel):
        themer = llm.themer_for(chosen, ctx.budget(), ctx.config)
        return run_themes(ctx.sessions, since, themer, chosen.name, progress=progress)
    size = ctx.config.themes.min_cluster_size
    offline = local.OfflineThemer(ctx.sessions, size, offline_embedder(ctx))
    result = run_themes(
        ctx.sessions, since, offline, chosen.name, local.MEMBERS_PER_THEME, progress
    )
    result.embedded, result.reused = offline.tally.embedded, offline.tally.reused
    result.calls += offline.tally.calls
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
