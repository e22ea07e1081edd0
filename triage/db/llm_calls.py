"""The llm_calls log: every model call is written here, and token budgets are read from it.

Budgets: `[llm] daily_token_budget` per UTC day and `run_token_budget` per run.

Spend is read from `llm_calls` (input + output tokens), so every replica and every run shares
the same daily count; Batch-Mode jobs not yet collected count with their estimates until their
calls are recorded. A run checks its next call's estimate before making it and stops cleanly,
with everything done so far stored, when the call would not fit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.config import LLMConfig
from triage.db.schema import BatchJob, LLMCall
from triage.db.store import utcnow
from triage.errors import BudgetExhausted


class CallRow(Protocol):
    """What one model call reports (providers' CallRecord has exactly these fields)."""

    provider: str
    model: str
    prompt_version: str
    purpose: str
    items: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    thinking_tokens: int
    latency_ms: int
    outcome: str
    error: str | None
    cost_usd: float
    batch_mode: bool


FIELDS = tuple(CallRow.__annotations__)  # every column a call fills in, besides created_at


def record_calls(
    session: Session,
    records: Iterable[CallRow],
    now: datetime | None = None,
    purpose: str | None = None,
) -> list[int]:
    """Write one llm_calls row per call (the one writer, so budgets count every call); row ids.

    `purpose` overrides each record's own (e.g. "eval"); rows are flushed so callers can link
    analyses to the call that made them.
    """
    now = now or utcnow()
    ids = []
    for rec in records:
        fields = {name: getattr(rec, name) for name in FIELDS}
        fields["purpose"] = purpose or rec.purpose or "classify"
        row = LLMCall(**fields, created_at=now)
        session.add(row)
        session.flush()
        ids.append(row.id)
    return ids


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def next_reset(now: datetime) -> datetime:
    """When the daily budget starts afresh: the next midnight UTC."""
    return day_start(now) + timedelta(days=1)


def spent_since(session: Session, since: datetime) -> tuple[int, float]:
    """Tokens (input + output) and estimated USD recorded since `since`."""
    row = session.execute(
        select(
            func.coalesce(func.sum(LLMCall.input_tokens + LLMCall.output_tokens), 0),
            func.coalesce(func.sum(LLMCall.cost_usd), 0.0),
        ).where(LLMCall.created_at >= since)
    ).one()
    return int(row[0]), float(row[1])


def held_by_batch_jobs(session: Session) -> int:
    """Estimated tokens of Batch-Mode jobs not yet collected: promised, so counted as spent."""
    rows = session.scalars(select(BatchJob.requests).where(BatchJob.completed_at.is_(None)))
    return sum(int(r.get("tokens", 0)) for requests in rows for r in requests)


def _span(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    return f"{minutes // 60}h {minutes % 60:02d}m"


@dataclass
class Budget:
    daily: int  # 0: no daily cap
    run: int  # 0: no per-run cap
    spent_today: int
    cost_today: float
    now: datetime
    spent_run: int = 0
    held: int = 0  # by Batch-Mode jobs not yet collected (their calls are not recorded yet)

    @classmethod
    def load(cls, session: Session, llm: LLMConfig, now: datetime | None = None) -> Budget:
        now = now or utcnow()
        tokens, cost = spent_since(session, day_start(now))
        held = held_by_batch_jobs(session)
        return cls(llm.daily_token_budget, llm.run_token_budget, tokens, cost, now, held=held)

    @classmethod
    def unlimited(cls) -> Budget:
        return cls(daily=0, run=0, spent_today=0, cost_today=0.0, now=utcnow())

    def remaining(self) -> int | None:
        """Tokens the next calls may still use, or None when nothing caps them."""
        left = []
        if self.daily:
            left.append(self.daily - self.spent_today - self.held)
        if self.run:
            left.append(self.run - self.spent_run)
        return max(min(left), 0) if left else None

    def allows(self, estimate: int) -> bool:
        remaining = self.remaining()
        return remaining is None or estimate <= remaining

    def add(self, tokens: int, cost: float = 0.0) -> None:
        self.spent_today += tokens
        self.spent_run += tokens
        self.cost_today += cost

    def exhausted(self, pending: int) -> BudgetExhausted:
        """The one-line stop message: what was spent, and when the budget resets."""
        left = f"{pending} item{'s' if pending != 1 else ''} still pending"
        daily_left = self.daily - self.spent_today - self.held if self.daily else None
        run_left = self.run - self.spent_run if self.run else None
        if daily_left is not None and (run_left is None or daily_left <= run_left):
            reset = next_reset(self.now)
            held = f", {self.held:,} more held by Batch Mode jobs not yet collected"
            return BudgetExhausted(
                f"daily token budget reached: {self.spent_today:,} of {self.daily:,} tokens"
                f" (~${self.cost_today:.2f}) spent today{held if self.held else ''}; it resets at"
                f" {reset:%Y-%m-%d %H:%M} UTC (in {_span(reset - utcnow())}); {left}"
                " ([llm] daily_token_budget)"
            )
        return BudgetExhausted(
            f"run token budget reached: {self.spent_run:,} of {self.run:,} tokens spent in this"
            f" run; {left}, re-run to continue ([llm] run_token_budget)"
        )
