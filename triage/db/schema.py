"""Typed table mappings. Every datetime is stored as naive UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(),
    }


class Item(Base):
    """One GitHub issue/PR or Stack Exchange question (`github:O/R#N`, `stackexchange:S/ID`)."""

    __tablename__ = "items"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # github | stackexchange
    # repo "owner/name" for GitHub, site for Stack Exchange
    scope: Mapped[str] = mapped_column(String(200))
    number: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20))  # open | closed
    state_reason: Mapped[str | None] = mapped_column(String(100))
    author: Mapped[str | None] = mapped_column(String(200))
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    assignees: Mapped[list[Any]] = mapped_column(JSON, default=list)
    milestone: Mapped[str | None] = mapped_column(String(300))
    is_pull_request: Mapped[bool] = mapped_column(Boolean, default=False)
    comments: Mapped[int] = mapped_column(Integer, default=0)
    reactions: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[int] = mapped_column(Integer, default=0)
    answer_count: Mapped[int] = mapped_column(Integer, default=0)
    is_answered: Mapped[bool] = mapped_column(Boolean, default=False)
    accepted_answer_id: Mapped[int | None] = mapped_column(Integer)
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    content_hash: Mapped[str] = mapped_column(String(64))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fetched_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_items_source_scope_updated", "source", "scope", "updated_at"),
        Index("ix_items_created_at", "created_at"),
        Index("ix_items_updated_at", "updated_at"),
        # the digest's count of unanswered questions (migration 0003)
        Index("ix_items_unanswered", "source", "answer_count", "state", "created_at"),
    )


class Cursor(Base):
    """Where a source's sync or backfill stands; advanced only after its page is committed."""

    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)  # e.g. sync:github:o/r
    value: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class LLMCall(Base):
    """One model call with its token accounting (after simonw/llm's log table)."""

    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(50))
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(50), default="")
    purpose: Mapped[str] = mapped_column(String(50), default="classify")
    items: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # Of output_tokens, those spent thinking (billed as output too).
    thinking_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(50), default="ok")
    error: Mapped[str | None] = mapped_column(Text)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    batch_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class Analysis(Base):
    """A classification + summary of one item's content, keyed so unchanged text is never redone."""

    __tablename__ = "analyses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_key: Mapped[str] = mapped_column(ForeignKey("items.key", ondelete="CASCADE"))
    content_hash: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(50))
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="ok")  # ok | needs_review
    reason: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(100))
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    priority: Mapped[str | None] = mapped_column(String(20))
    summary: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    dropped: Mapped[list[Any]] = mapped_column(JSON, default=list)  # answers outside the allowlist
    llm_call_id: Mapped[int | None] = mapped_column(ForeignKey("llm_calls.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("item_key", "content_hash", "provider", "model", "prompt_version"),
        Index("ix_analyses_item_created", "item_key", "created_at"),
    )


class BatchJob(Base):
    """A Batch-Mode job submitted to a provider; lets a later process collect its results."""

    __tablename__ = "batch_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(300), unique=True)
    provider: Mapped[str] = mapped_column(String(50))
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(50))
    state: Mapped[str] = mapped_column(String(50))
    requests: Mapped[list[Any]] = mapped_column(
        JSON, default=list
    )  # [[item keys], ...] per request
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)


class Theme(Base):
    __tablename__ = "themes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    terms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    provider: Mapped[str] = mapped_column(String(50), default="")
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("themes.id"))
    merged_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class ThemeItem(Base):
    """An item's current theme, with the content hash it was assigned for."""

    __tablename__ = "theme_items"

    item_key: Mapped[str] = mapped_column(
        ForeignKey("items.key", ondelete="CASCADE"), primary_key=True
    )
    theme_id: Mapped[int] = mapped_column(ForeignKey("themes.id"), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(DateTime)


class Embedding(Base):
    __tablename__ = "embeddings"

    item_key: Mapped[str] = mapped_column(
        ForeignKey("items.key", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Neighbour(Base):
    """One of an open item's nearest other items, from the last duplicates run that searched it.

    Kept per item so that a run searches only new or changed items (and those whose neighbours
    changed or closed); the export's `related` shows the first three.
    """

    __tablename__ = "neighbours"

    item_key: Mapped[str] = mapped_column(
        ForeignKey("items.key", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    other_key: Mapped[str] = mapped_column(String(300), index=True)
    similarity: Mapped[float] = mapped_column(Float)


class Duplicate(Base):
    """A possible duplicate pair (key_a < key_b); never acted on automatically."""

    __tablename__ = "duplicates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_a: Mapped[str] = mapped_column(ForeignKey("items.key", ondelete="CASCADE"))
    key_b: Mapped[str] = mapped_column(ForeignKey("items.key", ondelete="CASCADE"), index=True)
    similarity: Mapped[float] = mapped_column(Float, default=0.0)
    confidence: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")
    provider: Mapped[str] = mapped_column(String(50), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)

    __table_args__ = (UniqueConstraint("key_a", "key_b"),)


class Delivery(Base):
    """A digest delivered to a target, so the same window is posted once."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sink: Mapped[str] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(String(300))
    window_start: Mapped[datetime] = mapped_column(DateTime)
    window_end: Mapped[datetime] = mapped_column(DateTime)
    ref: Mapped[str | None] = mapped_column(String(300))  # message ts, file path
    delivered_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (UniqueConstraint("sink", "target", "window_start", "window_end"),)


class LabelWrite(Base):
    """A label triage wrote (or planned and skipped) on a GitHub issue."""

    __tablename__ = "label_writes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_key: Mapped[str] = mapped_column(ForeignKey("items.key", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    analysis_id: Mapped[int | None] = mapped_column(ForeignKey("analyses.id"))
    status: Mapped[str] = mapped_column(String(20))  # intended | applied | skipped | failed
    reason: Mapped[str | None] = mapped_column(Text)
    written_at: Mapped[datetime] = mapped_column(DateTime)
    # The updated_at (GitHub's clock) when the label was written: a later copy that is
    # newer and lacks the label means a human removed it.
    item_updated_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (UniqueConstraint("item_key", "label"),)


class LabelCorrection(Base):
    """A label triage added that a human then removed: never added again."""

    __tablename__ = "label_corrections"

    item_key: Mapped[str] = mapped_column(
        ForeignKey("items.key", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime)


class LabelThreshold(Base):
    """Per-label confidence threshold chosen by `triage eval --save-thresholds`."""

    __tablename__ = "label_thresholds"

    label: Mapped[str] = mapped_column(String(200), primary_key=True)
    provider: Mapped[str] = mapped_column(String(50), primary_key=True)
    threshold: Mapped[float] = mapped_column(Float)
    precision: Mapped[float] = mapped_column(Float)
    coverage: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class LocalModel(Base):
    """A trained local classifier for one scope (or `*` for the pooled model)."""

    __tablename__ = "local_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(300), index=True)
    version: Mapped[str] = mapped_column(String(50))
    train_size: Mapped[int] = mapped_column(Integer)
    categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class JobRun(Base):
    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100))
    slot: Mapped[str] = mapped_column(String(100))
    replica: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str] = mapped_column(String(20), default="running")
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_job_runs_job_started", "job", "started_at"),)


class JobSlot(Base):
    """One row per (job, scheduled slot): the replica that inserts it runs the job."""

    __tablename__ = "job_slots"

    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    slot: Mapped[str] = mapped_column(String(100), primary_key=True)
    replica: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime] = mapped_column(DateTime)


class WorkUnit(Base):
    """A share of one run's work (a source to sync, a batch of items to analyse).

    Replicas on one PostgreSQL database claim units (triage/db/claims.py): the claim holds a
    lease a live replica renews; a dead replica's lease expires and another one takes the unit
    over with the next `attempt`, which fences off whatever the first one still writes.
    """

    __tablename__ = "work_units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100))
    run: Mapped[str] = mapped_column(String(100))  # the job_runs id of the run that planned it
    unit: Mapped[str] = mapped_column(String(300))  # a source name, or "batch-0007"
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the batch's item keys
    state: Mapped[str] = mapped_column(String(20), default="free")  # free, claimed, done
    replica: Mapped[str | None] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the unit's counts

    __table_args__ = (
        UniqueConstraint("job", "run", "unit", name="uq_work_units_job_run_unit"),
        Index("ix_work_units_job_state", "job", "state"),
    )
