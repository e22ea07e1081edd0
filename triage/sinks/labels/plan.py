"""Which labels to write where, decided from the database alone: planning writes nothing.

Rules: only allowlisted labels ([labels] map values), only above the per-label threshold, never
remove a label, never touch an issue a human has triaged (it carries an allowlisted label triage
did not write), never re-add a label a human removed. `apply` writes and records (apply.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.context import Context
from triage.db import label_history as history
from triage.db.schema import Analysis, Item, LabelThreshold


@dataclass
class PlannedIssue:
    key: str
    repo: str
    number: int
    url: str
    labels: list[str]
    confidence: float
    reason: str
    analysis_id: int
    item_updated_at: datetime
    kept: tuple[str, ...] = ()  # map labels it has (ours); any other one found later is a human's
    # Labels a run meant to write and may have written before it stopped: ours, to confirm.
    intended: tuple[str, ...] = ()


@dataclass
class LabelPlan:
    issues: list[PlannedIssue] = field(default_factory=list)
    held: Counter[str] = field(default_factory=Counter)  # why items/labels were left alone
    new_corrections: list[tuple[str, str]] = field(default_factory=list)  # recorded by apply

    @property
    def writes(self) -> int:
        return sum(len(i.labels) for i in self.issues)


def _thresholds(session: Session) -> dict[tuple[str, str], float]:
    rows = session.execute(
        select(LabelThreshold.label, LabelThreshold.provider, LabelThreshold.threshold)
    )
    return {(label.lower(), provider): t for label, provider, t in rows}


RULES_NOTE = "rules:"  # how the local provider marks an answer made by rules, not a model


def threshold_for(
    thresholds: dict[tuple[str, str], float],
    label: str,
    category: str | None,
    provider: str,
    default: float,
) -> float:
    """The threshold `triage eval --save-thresholds` chose for this label (or its category)."""
    for name in (label, category):
        if name and (name.lower(), provider) in thresholds:
            return thresholds[(name.lower(), provider)]
    return default


def _latest_analyses(session: Session) -> list[tuple[Item, Analysis]]:
    """Open GitHub issues with their newest successful analysis of the current text."""
    latest = (
        select(func.max(Analysis.id).label("id"))
        .join(
            Item,
            (Item.key == Analysis.item_key) & (Item.content_hash == Analysis.content_hash),
        )
        .where(Analysis.status == "ok", Item.source == "github", Item.state == "open")
        .group_by(Analysis.item_key)
        .subquery()
    )
    stmt = (
        select(Item, Analysis)
        .join(Analysis, Analysis.item_key == Item.key)
        .join(latest, Analysis.id == latest.c.id)
        .order_by(Item.scope, Item.number)  # issue 9 before issue 10
    )
    return [(i, a) for i, a in session.execute(stmt)]


def _reason(a: Analysis) -> str:
    summary = (a.summary or "").strip().replace("\n", " ")
    if len(summary) > 90:
        summary = summary[:89] + "…"
    head = f"{a.category or '-'} ({a.provider})"
    return f"{head}: {summary}" if summary else head


def plan(ctx: Context) -> LabelPlan:
    """Which labels to add where; human corrections seen but not yet recorded count already."""
    cfg = ctx.config.labels
    allow = {label.lower(): label for label in cfg.allowlist()}
    result = LabelPlan()
    with ctx.sessions() as s:
        result.new_corrections = history.find_corrections(s)
        thresholds = _thresholds(s)
        pairs = _latest_analyses(s)
        keys = [i.key for i, _ in pairs]
        writes = history.writes_by_item(s, keys)
        corrected = history.corrected(s, keys)
    corrected |= {(key, label.lower()) for key, label in result.new_corrections}
    for item, analysis in pairs:
        mine = writes.get(item.key, {})
        ours = {lbl for lbl, w in mine.items() if w.status == history.APPLIED}
        intended = {lbl for lbl, w in mine.items() if w.status == history.INTENDED and lbl in allow}
        current = {str(x).lower() for x in item.labels or []}
        human = sorted(lbl for lbl in current if lbl in allow and lbl not in ours | intended)
        if human:
            result.held["labelled by a human"] += 1
            continue
        if (analysis.reason or "").startswith(RULES_NOTE):
            # Keyword rules answer where no model was trained: worth a digest line, not a label.
            result.held["rule-based guess (no trained model)"] += 1
            continue
        wanted = [str(x) for x in analysis.labels or []]
        wanted += cfg.map.get(analysis.category or "", [])
        add: list[str] = [allow[label] for label in sorted(intended)]  # confirmed or written
        for label in dict.fromkeys(w.lower() for w in wanted):
            if label in intended:
                continue
            if label not in allow:
                result.held["label not in [labels] map"] += 1
            elif label in current or label in ours:
                continue
            elif (item.key, label) in corrected:
                result.held["removed by a human before"] += 1
            elif (analysis.confidence or 0.0) < threshold_for(
                thresholds, label, analysis.category, analysis.provider, cfg.min_confidence
            ):
                result.held["below confidence threshold"] += 1
            else:
                add.append(allow[label])
        if add:
            result.issues.append(
                PlannedIssue(
                    key=item.key,
                    repo=item.scope,
                    number=item.number,
                    url=item.url,
                    labels=add,
                    confidence=float(analysis.confidence or 0.0),
                    reason=_reason(analysis),
                    analysis_id=analysis.id,
                    item_updated_at=item.updated_at,
                    kept=tuple(sorted(lbl for lbl in current if lbl in allow)),
                    intended=tuple(sorted(intended)),
                )
            )
    return result
