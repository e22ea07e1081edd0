"""Batch Mode: submit pending items as batch jobs, and collect finished jobs later.

A job is recorded (state SUBMITTING, under a unique display name) before it is created and
updated once it exists, so a process that dies at any point loses nothing: the next poll finds
the job by its display name, items held by an open job are never sent again, and a finished
job's results are stored in the same transaction that marks it collected. Answers that need
another call (a blocked or incomplete request) are finished with ordinary calls right away.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.analysis import classify
from triage.context import Context
from triage.db.engine import transaction
from triage.db.llm_calls import Budget
from triage.db.schema import BatchJob
from triage.db.store import utcnow
from triage.errors import BudgetExhausted, ConfigError
from triage.providers import prompts, spec_for
from triage.providers.base import Classifier, ClassifyOutcome, ItemText, Taxonomy
from triage.providers.batch_jobs import BatchJobs, BatchRequest, JobStatus, split_jobs
from triage.providers.calls import CallRecord, Reply
from triage.providers.packing import estimate_tokens
from triage.providers.repair import settle_reply

SUBMITTING = "SUBMITTING"
# A SUBMITTING row whose job cannot be found after this long was never created.
LOST_AFTER = timedelta(minutes=10)


@dataclass
class SubmitStats:
    jobs: list[str] = field(default_factory=list)
    requests: int = 0
    items: int = 0
    exhausted: BudgetExhausted | None = None


@dataclass
class PollStats:
    collected: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    failed_jobs: dict[str, str] = field(default_factory=dict)
    outcome: classify.RunStats | None = None  # what the collected answers gave
    retried: classify.RunStats | None = None  # ordinary calls for what a job left undone


def batch_provider(provider: Classifier) -> BatchJobs:
    """The provider as one that runs Batch Mode jobs, or a one-line config error."""
    if "batch" not in spec_for(provider.name).capabilities or not isinstance(provider, BatchJobs):
        raise ConfigError("--batch-mode and --poll need the gemini provider (`--provider gemini`)")
    return provider


def _open_rows(session: Session, p: BatchJobs) -> list[BatchJob]:
    stmt = (
        select(BatchJob)
        .where(BatchJob.provider == p.name, BatchJob.completed_at.is_(None))
        .order_by(BatchJob.id)
    )
    return list(session.scalars(stmt))


def recover(ctx: Context, p: BatchJobs) -> None:
    """Match rows left in SUBMITTING by a crash to their jobs, or release their items."""
    with transaction(ctx.sessions) as s:
        rows = [r for r in _open_rows(s, p) if r.state == SUBMITTING]
        for row in rows:
            found = p.find_jobs(row.name.removeprefix("submitting:"))
            if found:
                row.name, row.state, row.updated_at = found[0].name, found[0].state, utcnow()
            elif utcnow() - row.created_at > LOST_AFTER:
                row.state, row.error = "NOT_CREATED", "the job was never created"
                row.completed_at = row.updated_at = utcnow()


def submit(
    ctx: Context,
    p: BatchJobs,
    *,
    limit: int | None = None,
    reanalyze: bool = False,
    max_bytes: int | None = None,
) -> SubmitStats:
    """Send everything pending as batch jobs (split under the provider's size limit)."""
    recover(ctx, p)
    config, stats = ctx.config, SubmitStats()
    taxonomy = Taxonomy.from_config(config)
    with ctx.sessions() as s:
        items = classify.pending_items(s, p, limit=limit, reanalyze=reanalyze)
        texts = [classify.item_text(it) for it in items]
        examples = classify.examples_for(s, config, {t.scope for t in texts})
        budget = Budget.load(s, config.llm)  # counts the jobs not yet collected
    system = prompts.system_instruction(taxonomy, examples)
    schema = prompts.response_model(taxonomy)
    llm = config.llm
    batches = prompts.pack_for(texts, taxonomy, examples, llm)
    prefix = estimate_tokens(system)
    requests = [
        p.build_request(b, prompts.item_ids(len(b)), system, schema, i)
        for i, b in enumerate(batches)
    ]
    by_request = {id(r): b for r, b in zip(requests, batches, strict=True)}
    left = len(texts)
    for job in split_jobs(requests, p.max_job_bytes if max_bytes is None else max_bytes):
        held = [by_request[id(r)] for r in job]
        tokens = [classify.estimate(b, prefix, llm.max_item_chars) for b in held]
        if not budget.allows(sum(tokens)):
            stats.exhausted = budget.exhausted(left)
            break
        name = _create(ctx, p, job, held, tokens)
        budget.add(sum(tokens))
        stats.jobs.append(name)
        stats.requests += len(job)
        stats.items += sum(len(b) for b in held)
        left -= sum(len(b) for b in held)
    return stats


def _create(
    ctx: Context,
    p: BatchJobs,
    job: list[BatchRequest],
    held: list[list[ItemText]],
    tokens: list[int],
) -> str:
    """Record the job, create it, then record its name: no moment where it could be lost."""
    display = f"triage-{uuid.uuid4().hex}"
    now = utcnow()
    requests = [
        {"keys": [t.key for t in b], "hashes": [t.content_hash for t in b], "tokens": n}
        for b, n in zip(held, tokens, strict=True)
    ]
    with transaction(ctx.sessions) as s:
        row = BatchJob(
            name=f"submitting:{display}",
            provider=p.name,
            model=p.model,
            prompt_version=p.prompt_version,
            state=SUBMITTING,
            requests=requests,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
    try:
        status = p.create_job(job, display)
    except Exception as exc:
        with transaction(ctx.sessions) as s:
            failed = s.scalars(select(BatchJob).where(BatchJob.name == row.name)).one()
            failed.state, failed.completed_at = "NOT_CREATED", utcnow()
            failed.error = getattr(exc, "reason", None) or type(exc).__name__
        raise
    with transaction(ctx.sessions) as s:
        done = s.scalars(select(BatchJob).where(BatchJob.name == row.name)).one()
        done.name, done.state, done.updated_at = status.name, status.state, utcnow()
    return status.name


def _hashes(row: BatchJob) -> dict[str, str]:
    """The content hash each item had when it was sent (its analysis is for that text)."""
    return {k: h for r in row.requests for k, h in zip(r["keys"], r["hashes"], strict=True)}


class _Ident:
    def __init__(self, row: BatchJob) -> None:
        self.name, self.model, self.prompt_version = row.provider, row.model, row.prompt_version


def poll(ctx: Context, p: BatchJobs) -> PollStats:
    """Collect every finished job; answers needing another call get one now."""
    recover(ctx, p)
    stats = PollStats()
    taxonomy = Taxonomy.from_config(ctx.config)
    totals = classify.RunStats(p.name, p.model)
    retry: set[str] = set()
    with ctx.sessions() as s:
        rows = [r for r in _open_rows(s, p) if r.state != SUBMITTING]
    for row in rows:
        # Ask the service first, then write in one short transaction.
        status = p.get_job(row.name, [len(r["keys"]) for r in row.requests])
        outcome = _outcome(row, status, taxonomy) if status.done else None
        with transaction(ctx.sessions) as s:
            stored = s.get(BatchJob, row.id)
            assert stored is not None
            stored.state, stored.updated_at = status.state, utcnow()
            if outcome is not None:
                hashes = _hashes(row)
                classify.store_outcome(s, outcome, hashes, _Ident(row), taxonomy)
                stored.completed_at, stored.error = utcnow(), status.error
        if outcome is None:
            stats.running.append(row.name)
            continue
        totals.count(outcome)
        stats.collected.append(row.name)
        if status.error and not status.results:
            stats.failed_jobs[row.name] = status.error  # its items are pending again
        elif row.model == p.model and row.prompt_version == p.prompt_version:
            retry |= set(outcome.failed)
    stats.outcome = totals
    if retry:
        stats.retried = classify.run(ctx, p, keys=retry)
    return stats


def _outcome(row: BatchJob, status: JobStatus, taxonomy: Taxonomy) -> ClassifyOutcome:
    out = ClassifyOutcome()
    for index, request in enumerate(row.requests):
        items = [ItemText(key=k, title="", body="") for k in request["keys"]]
        result: Reply | str | None = (status.results or {}).get(index)
        if isinstance(result, Reply):
            out.extend(settle_reply(items, result, taxonomy))
            continue
        reason = result or status.error or "the batch job returned no result"
        if isinstance(result, str):
            out.calls.append(_error_call(row, len(items), result))
        out.failed.update({it.key: reason for it in items})
    return out


def _error_call(row: BatchJob, items: int, error: str) -> CallRecord:
    return CallRecord(
        row.provider,
        row.model,
        row.prompt_version,
        items=items,
        outcome="error",
        error=error[:500],
        batch_mode=True,
    )
