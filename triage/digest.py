"""Build one Digest model from the database; every sink renders this same model.

All counting happens in SQL over the window's rows (index on items.created_at), so a digest of a
large database reads only the items of the windows it reports on.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from triage.analysis.duplicates.model import OFFLINE_MODEL
from triage.config import Config
from triage.db.schema import Analysis, Duplicate, Item, LLMCall, Theme, ThemeItem
from triage.db.store import utcnow
from triage.digest_model import (
    CountRow,
    Digest,
    DuplicateEntry,
    ItemRef,
    Listing,
    Spend,
    ThemeEntry,
    ThemeVolume,
    Volume,
)
from triage.digest_span import covering, stored
from triage.windows import Window

# How many recent windows the theme-volume chart shows.
VOLUME_WINDOWS = 8
# Longest list of one kind shown in full; the rest is announced ("and N more"), never dropped.
MAX_LIST = 100
BUG_CATEGORY = "bug"
NOT_ANALYSED = "not analysed"
NEEDS_REVIEW = "needs review"
EPOCH = datetime(1970, 1, 1)
__all__ = [  # the models are re-exported: sinks import them from here
    "CountRow",
    "Digest",
    "DuplicateEntry",
    "ItemRef",
    "Listing",
    "Spend",
    "ThemeEntry",
    "ThemeVolume",
    "Volume",
    "build_digest",
]


# -- SQL helpers ---------------------------------------------------------------------------


def _bucket(column: Any, window: Window, count: int) -> Any:
    """0 for the current window, 1 for the previous one, ... (rows are pre-filtered)."""
    whens = [(column >= window.shifted(k).start, literal(k)) for k in range(count - 1)]
    return case(*whens, else_=literal(count - 1)) if whens else literal(0)


def _in_windows(window: Window, count: int) -> Any:
    return and_(Item.created_at >= window.shifted(count - 1).start, Item.created_at < window.end)


def _latest_analysis_id() -> Any:
    """Correlated: the newest analysis made from the item's current text."""
    a2 = aliased(Analysis)
    return (
        select(a2.id)
        .where(a2.item_key == Item.key, a2.content_hash == Item.content_hash)
        .order_by(a2.created_at.desc(), a2.id.desc())
        .limit(1)
        .correlate(Item)
        .scalar_subquery()
    )


def _with_analysis(stmt: Select[Any]) -> Select[Any]:
    return stmt.select_from(Item).outerjoin(Analysis, Analysis.id == _latest_analysis_id())


def _ref(item: Item, analysis: Analysis | None = None) -> ItemRef:
    return ItemRef(
        key=item.key,
        source=item.source,
        scope=item.scope,
        title=item.title,
        url=item.url,
        state=item.state,
        created_at=item.created_at,
        category=analysis.category if analysis else None,
        priority=analysis.priority if analysis else None,
        summary=analysis.summary if analysis else None,
    )


def _rows(counts: dict[str, list[int]]) -> list[CountRow]:
    rows = [CountRow(name=k, current=v[0], previous=v[1]) for k, v in counts.items()]
    return sorted(rows, key=lambda r: (-r.current, -r.previous, r.name))


# -- sections ------------------------------------------------------------------------------


def source_counts(session: Session, window: Window) -> list[CountRow]:
    bucket = _bucket(Item.created_at, window, 2).label("bucket")
    stmt = (
        select(Item.source, bucket, func.count())
        .where(_in_windows(window, 2))
        .group_by(Item.source, bucket)
    )
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for source, b, n in session.execute(stmt):
        counts[source][int(b)] += n
    return _rows(counts)


def category_counts(session: Session, window: Window) -> list[CountRow]:
    bucket = _bucket(Item.created_at, window, 2).label("bucket")
    category = case(
        (Analysis.id.is_(None), literal(NOT_ANALYSED)),
        (Analysis.category.is_(None), literal(NEEDS_REVIEW)),
        else_=Analysis.category,
    ).label("category")
    stmt = _with_analysis(select(category, bucket, func.count())).where(_in_windows(window, 2))
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, b, n in session.execute(stmt.group_by(category, bucket)):
        counts[name][int(b)] += n
    return _rows(counts)


def _theme_roots(session: Session) -> tuple[dict[int, int], dict[int, Theme]]:
    """Every theme id -> the theme it now counts under (following merged_into chains)."""
    themes = {t.id: t for t in session.scalars(select(Theme))}
    roots: dict[int, int] = {}
    for tid in themes:
        seen, cur = {tid}, tid
        while (nxt := themes[cur].merged_into) is not None and nxt in themes and nxt not in seen:
            seen.add(nxt)
            cur = nxt
        roots[tid] = cur
    return roots, themes


def _theme_counts(
    session: Session, window: Window, roots: dict[int, int]
) -> dict[int, dict[int, dict[str, int]]]:
    """root theme -> bucket -> source -> items created in that bucket."""
    bucket = _bucket(Item.created_at, window, VOLUME_WINDOWS).label("bucket")
    stmt = (
        select(ThemeItem.theme_id, Item.source, bucket, func.count())
        .join(ThemeItem, ThemeItem.item_key == Item.key)
        .where(_in_windows(window, VOLUME_WINDOWS))
        .group_by(ThemeItem.theme_id, Item.source, bucket)
    )
    out: dict[int, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for tid, source, b, n in session.execute(stmt):
        per_source = out[roots.get(tid, tid)][int(b)]
        per_source[source] = per_source.get(source, 0) + n
    return out


def _trend(
    current: int, previous: int, seen_before: bool
) -> Literal["new", "growing", "shrinking", "steady"]:
    """`new` is a problem never reported before this window; one back after a quiet spell grows."""
    if not seen_before and current > 0:
        return "new"
    if current > previous:
        return "growing"
    return "shrinking" if current < previous else "steady"


def _examples(
    session: Session, window: Window, roots: dict[int, int], wanted: list[int], n: int
) -> dict[int, list[ItemRef]]:
    """The most-discussed items of each wanted theme in the window.

    Driven by the window's items (index on created_at), not by the themes: a big theme holds
    many more items than a window does.
    """
    interest = (Item.reactions + Item.comments + Item.score).label("interest")
    stmt = (
        select(ThemeItem.theme_id, Item.key, interest, Item.created_at)
        .join(ThemeItem, ThemeItem.item_key == Item.key)
        .where(Item.created_at >= window.start, Item.created_at < window.end)
    )
    picked: dict[int, list[tuple[int, float, str]]] = defaultdict(list)
    wanted_set = set(wanted)
    for tid, key, score, created in session.execute(stmt):
        root = roots.get(tid, tid)
        if root in wanted_set:
            picked[root].append((-(score or 0), _neg(created), key))
    chosen = {root: [k for *_, k in sorted(c)[:n]] for root, c in picked.items()}
    keys = [k for ks in chosen.values() for k in ks]
    items = {i.key: i for i in session.scalars(select(Item).where(Item.key.in_(keys)))}
    return {root: [_ref(items[k]) for k in ks if k in items] for root, ks in chosen.items()}


def _seen_before(
    session: Session, window: Window, roots: dict[int, int], candidates: list[int]
) -> set[int]:
    """Which of these themes had an item created before the window (at any time)."""
    members: dict[int, list[int]] = defaultdict(list)
    for tid, root in roots.items():
        members[root].append(tid)
    seen = set()
    for root in candidates:
        earlier = session.scalar(
            select(ThemeItem.item_key)
            .join(Item, Item.key == ThemeItem.item_key)
            .where(ThemeItem.theme_id.in_(members.get(root) or [root]))
            .where(Item.created_at < window.start)
            .limit(1)
        )
        if earlier is not None:
            seen.add(root)
    return seen


def _neg(when: datetime) -> float:
    """Sort key for "newest first" inside an ascending sort."""
    return -(when - EPOCH).total_seconds()


def theme_sections(
    session: Session, window: Window, top: int, examples: int
) -> tuple[list[ThemeEntry], int, Volume]:
    roots, themes = _theme_roots(session)
    counts = _theme_counts(session, window, roots)

    def total(root: int, b: int) -> int:
        return sum(counts[root].get(b, {}).values())

    active = [r for r in counts if total(r, 0) > 0]
    ranked = sorted(active, key=lambda r: (-total(r, 0), -(total(r, 0) - total(r, 1)), r))[:top]
    picked = _examples(session, window, roots, ranked, examples)
    # Items in the chart's earlier windows settle most themes; only the rest need a query.
    quiet = [r for r in ranked if not any(total(r, b) for b in range(1, VOLUME_WINDOWS))]
    seen = (set(ranked) - set(quiet)) | _seen_before(session, window, roots, quiet)
    entries = []
    for root in ranked:
        theme = themes.get(root)
        cur, prev = total(root, 0), total(root, 1)
        entries.append(
            ThemeEntry(
                id=root,
                title=theme.title if theme else f"theme {root}",
                description=theme.description if theme else "",
                current=cur,
                previous=prev,
                by_source=dict(sorted(counts[root].get(0, {}).items())),
                trend=_trend(cur, prev, root in seen),
                examples=picked.get(root, []),
            )
        )
    ends = [window.shifted(k).end for k in reversed(range(VOLUME_WINDOWS))]
    series = [
        ThemeVolume(
            id=e.id,
            title=e.title,
            counts=[total(e.id, k) for k in reversed(range(VOLUME_WINDOWS))],
        )
        for e in entries
    ]
    return entries, len(active), Volume(window_ends=ends, themes=series)


def high_priority_bugs(session: Session, window: Window, cfg: Config) -> Listing:
    wanted = list(cfg.digest.high_priority)
    order = {p: i for i, p in enumerate(cfg.taxonomy.priorities)}
    rank = case(*[(Analysis.priority == p, literal(order.get(p, 0))) for p in wanted], else_=0)
    where = and_(
        Item.created_at >= window.start,
        Item.created_at < window.end,
        Item.state == "open",
        Analysis.category == BUG_CATEGORY,
        Analysis.priority.in_(wanted),
    )
    base = select(Item, Analysis).join(Analysis, Analysis.id == _latest_analysis_id())
    count = session.scalar(
        select(func.count())
        .select_from(Item)
        .join(Analysis, Analysis.id == _latest_analysis_id())
        .where(where)
    )
    stmt = base.where(where).order_by(
        rank.desc(), (Item.reactions + Item.comments).desc(), Item.created_at.desc(), Item.key
    )
    rows = session.execute(stmt.limit(MAX_LIST)).all()
    return Listing(total=count or 0, items=[_ref(i, a) for i, a in rows])


def duplicates(session: Session, window: Window) -> tuple[list[DuplicateEntry], int]:
    ia, ib = aliased(Item), aliased(Item)
    where = and_(Duplicate.created_at >= window.start, Duplicate.created_at < window.end)
    total = session.scalar(select(func.count(Duplicate.id)).where(where)) or 0
    stmt = (
        select(Duplicate, ia, ib)
        .join(ia, ia.key == Duplicate.key_a)
        .join(ib, ib.key == Duplicate.key_b)
        .where(where)
        .order_by(Duplicate.confidence.desc(), Duplicate.id)
        .limit(MAX_LIST)
    )
    entries = [
        DuplicateEntry(
            a=_ref(a),
            b=_ref(b),
            confidence=d.confidence,
            reason=d.reason or "",
            similarity=d.similarity,
            judged=d.model != OFFLINE_MODEL,
        )
        for d, a, b in session.execute(stmt)
    ]
    return entries, total


def unanswered(session: Session, window: Window, hours: float) -> Listing:
    """Open Stack Exchange questions with no answer, older than the threshold, newest first."""
    cutoff = window.end - timedelta(hours=hours)
    where = and_(
        Item.source == "stackexchange",
        Item.state == "open",
        Item.created_at < cutoff,
        Item.answer_count == 0,
        or_(Item.is_answered.is_(False), Item.is_answered.is_(None)),
    )
    total = session.scalar(select(func.count()).select_from(Item).where(where)) or 0
    stmt = select(Item).where(where).order_by(Item.created_at.desc(), Item.key).limit(MAX_LIST)
    return Listing(total=total, items=[_ref(i) for i in session.scalars(stmt)])


def spend(session: Session, window: Window, now: datetime | None = None) -> Spend:
    """Calls in the window; for the current window, every call up to the moment of building."""
    now = now or utcnow()
    end = now if window.end <= now < window.end + window.length else window.end
    row = session.execute(
        select(
            func.count(LLMCall.id),
            func.coalesce(func.sum(LLMCall.input_tokens), 0),
            func.coalesce(func.sum(LLMCall.cached_tokens), 0),
            func.coalesce(func.sum(LLMCall.output_tokens), 0),
            func.coalesce(func.sum(LLMCall.cost_usd), 0.0),
        ).where(LLMCall.created_at >= window.start, LLMCall.created_at <= end)
    ).one()
    return Spend(
        calls=int(row[0]),
        input_tokens=int(row[1]),
        cached_tokens=int(row[2]),
        output_tokens=int(row[3]),
        cost_usd=round(float(row[4]), 4),
    )


def build_digest(session: Session, cfg: Config, window: Window, coverage: str = "") -> Digest:
    """Everything the digest says about `window`, compared with the window before it."""
    now = utcnow()
    by_source = source_counts(session, window)
    held = stored(session) if not sum(r.current for r in by_source) else None
    themes, active, volume = theme_sections(
        session, window, cfg.digest.top_themes, cfg.digest.examples_per_theme
    )
    dups, dups_total = duplicates(session, window)
    return Digest(
        window=window.spec,
        start=window.start,
        end=window.end,
        previous_start=window.shifted(1).start,
        generated_at=now,
        coverage=coverage,
        empty_hint=held.hint(window.end, "triage digest") if held else "",
        total=CountRow(
            name="total",
            current=sum(r.current for r in by_source),
            previous=sum(r.previous for r in by_source),
        ),
        by_source=by_source,
        by_category=category_counts(session, window),
        themes=themes,
        active_themes=active,
        high_priority=high_priority_bugs(session, window, cfg),
        duplicates=dups,
        duplicates_total=dups_total,
        unanswered=unanswered(session, window, cfg.digest.unanswered_after_hours),
        unanswered_after_hours=cfg.digest.unanswered_after_hours,
        spend=spend(session, window, now),
        volume=volume,
    )


def build_covering(session: Session, cfg: Config, window: Window, sink: str | None) -> Digest:
    """The digest of `window` stretched back to the previous digest to `sink` (see digest_span)."""
    span = covering(session, window, sink)
    return build_digest(session, cfg, span.window, span.note)
