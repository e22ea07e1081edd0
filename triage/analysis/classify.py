"""Classify and summarize what is pending: plan from the DB, pack, call a provider, store.

An item is pending for a provider when no analysis exists for its current content hash with
that provider, model and prompt version, and no Batch-Mode job is still working on it. Each
packed batch is stored in its own transaction with the calls that produced it, so a stopped
run keeps everything done so far and the next run picks up the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy import and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from triage.analysis import shots
from triage.config import Config
from triage.context import Context
from triage.db.engine import transaction
from triage.db.llm_calls import Budget, record_calls
from triage.db.schema import Analysis, BatchJob, Item
from triage.db.store import utcnow
from triage.errors import BudgetExhausted
from triage.providers import concurrency_for, prompts, spec_for
from triage.providers.base import Classifier, ClassifyOutcome, Example, ItemText, Taxonomy, end_run
from triage.providers.calls import CallRecord
from triage.providers.packing import estimate_tokens
from triage.providers.parallel import run_bounded

OUTPUT_TOKENS_PER_ITEM = 80  # what one answer object costs, for budget estimates
UPSERT_ROWS = 500  # analyses per statement (SQLite allows 32,766 parameters in one)
EXAMPLE_SCAN = 5000  # newest items per pass searched for few-shot examples


@dataclass
class RunStats:
    """What one `triage analyze` run did, for the summary line and the exit code."""

    provider: str
    model: str
    planned: int = 0
    analysed: int = 0
    reviews: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0  # of output_tokens
    cost_usd: float = 0.0
    dropped: int = 0  # labels/priorities outside the allowlist, removed before storing
    stopped: str | None = None  # why the run ended early (quota, repeated failures)
    exhausted: BudgetExhausted | None = None  # the token budget ran out

    @property
    def done(self) -> int:
        return self.analysed + self.reviews

    def count(self, outcome: ClassifyOutcome) -> None:
        self.analysed += len(outcome.results)
        self.reviews += len(outcome.reviews)
        self.failed.update(outcome.failed)
        self.dropped += sum(len(r.dropped) for r in outcome.results)
        for call in outcome.calls:
            self.calls += call.purpose != "cache"  # creating a cache is billed, not a call
            self.input_tokens += call.input_tokens
            self.cached_tokens += call.cached_tokens
            self.output_tokens += call.output_tokens
            self.thinking_tokens += call.thinking_tokens
            self.cost_usd += call.cost_usd


def item_text(item: Item) -> ItemText:
    return ItemText(
        key=item.key,
        title=item.title,
        body=item.body or "",
        source=item.source,
        scope=item.scope,
        content_hash=item.content_hash,
    )


class Identity(Protocol):
    """What keys an analysis: who made it, with which model and prompt."""

    name: str
    model: str
    prompt_version: str


def keys_in_open_batches(session: Session, provider: Identity) -> set[str]:
    """Items a Batch-Mode job still holds: not to be sent again until it is collected."""
    rows = session.scalars(
        select(BatchJob.requests).where(
            BatchJob.provider == provider.name,
            BatchJob.model == provider.model,
            BatchJob.prompt_version == provider.prompt_version,
            BatchJob.completed_at.is_(None),
        )
    )
    return {key for requests in rows for request in requests for key in request.get("keys", [])}


def pending_items(
    session: Session,
    provider: Identity,
    *,
    limit: int | None = None,
    reanalyze: bool = False,
    keys: Collection[str] | None = None,
) -> list[Item]:
    """Items whose current text has no analysis by this provider/model/prompt, newest first."""
    stmt = select(Item).order_by(Item.updated_at.desc(), Item.key)
    if keys is not None:
        stmt = stmt.where(Item.key.in_(list(keys)))
    if not reanalyze:
        done = and_(
            Analysis.item_key == Item.key,
            Analysis.content_hash == Item.content_hash,
            Analysis.provider == provider.name,
            Analysis.model == provider.model,
            Analysis.prompt_version == provider.prompt_version,
        )
        stmt = stmt.outerjoin(Analysis, done).where(Analysis.id.is_(None))
    held = keys_in_open_batches(session, provider)
    out: list[Item] = []
    for item in session.scalars(stmt.execution_options(yield_per=500)):
        if item.key in held:
            continue
        out.append(item)
        if limit is not None and len(out) >= limit:
            break
    return out


def examples_for(session: Session, config: Config, scopes: Iterable[str]) -> list[Example]:
    """Human-labelled items (labels that map to one category), the analysed scopes first.

    `few_shot_per_category` per category at least; `shot_tokens` more of them, newest first
    (see triage/analysis/shots.py).
    """
    llm = config.llm
    per = llm.few_shot_per_category
    label_to_cat = {lb: cat for cat, labels in config.labels.map.items() for lb in labels}
    if (per == 0 and llm.shot_tokens == 0) or not label_to_cat:
        return []
    wanted = [cat for cat in config.taxonomy.categories if config.labels.map.get(cat)]
    # The most recently updated labelled issues are examples enough; never scan a whole history.
    base = (
        select(Item.title, Item.body, Item.labels)
        .where(Item.source == "github")
        .order_by(Item.updated_at.desc(), Item.key)
        .limit(EXAMPLE_SCAN)
    )
    scope_list = sorted(set(scopes))

    def candidates() -> Iterator[Example]:
        for stmt in (
            base.where(Item.scope.in_(scope_list)),
            base.where(Item.scope.not_in(scope_list)),
        ):
            for title, body, labels in session.execute(stmt.execution_options(yield_per=500)):
                cats = {label_to_cat[lb] for lb in labels or [] if lb in label_to_cat}
                if len(cats) != 1:
                    continue  # unlabelled, or labels that disagree: not a clean example
                mapped = tuple(lb for lb in labels if lb in label_to_cat)
                yield Example(title, body or "", cats.pop(), mapped)

    allowlist = sorted(config.labels.allowlist())
    chosen = shots.choose(candidates(), wanted, allowlist, per, llm.shot_tokens)
    return chosen + counter_examples(session, max(per, 1))


def counter_examples(session: Session, per: int) -> list[Example]:
    """Labels a human removed after triage added them, shown to the model as "not this label"."""
    from triage.db.label_history import corrections_for

    out: list[Example] = []
    for ce in corrections_for(session, limit=max(per, 1) * 2):
        out.append(Example(ce.title, ce.body or "", ce.category or "", (), (ce.wrong_label,)))
    return out


def _upsert_analyses(session: Session, rows: list[dict[str, Any]]) -> None:
    """One statement for a call's answers (a row per item: the last answer for a key wins).

    A shared unit's store is this statement and the lease check (claims.hold) in one
    transaction: the answers land once, or not at all when the unit was taken over.
    """
    keys = ["item_key", "content_hash", "provider", "model", "prompt_version"]
    # PostgreSQL refuses one INSERT ... ON CONFLICT touching a row twice: one row per key.
    unique = list({tuple(r[k] for k in keys): r for r in rows}.values())
    if not unique:
        return
    dialect = session.get_bind().dialect.name
    stmt = (postgresql if dialect == "postgresql" else sqlite).insert(Analysis)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={k: stmt.excluded[k] for k in unique[0] if k not in keys}
    )
    # Parameters apart from the statement: compiled once and cached, sent as multi-row VALUES
    # ("insertmanyvalues", https://docs.sqlalchemy.org/en/20/core/connections.html).
    session.connection().execute(stmt, unique)


def store_outcome(
    session: Session,
    outcome: ClassifyOutcome,
    hashes: dict[str, str],
    provider: Identity,
    taxonomy: Taxonomy,
    purpose: str = "classify",
) -> None:
    """Write the calls and the analyses they produced (allowlist enforced once more)."""
    now = utcnow()
    ids = record_calls(session, [_defaulted(rec, purpose) for rec in outcome.calls], now)
    call_ids = {id(rec): row_id for rec, row_id in zip(outcome.calls, ids, strict=True)}
    allowed = set(taxonomy.labels)
    common = {"provider": provider.name, "model": provider.model}
    common["prompt_version"] = provider.prompt_version
    rows: list[dict[str, Any]] = []
    for r in outcome.results:
        if r.category not in taxonomy.categories:
            continue
        rows.append(
            {
                "item_key": r.key,
                "content_hash": hashes[r.key],
                **common,
                "status": "ok",
                "reason": r.note,  # e.g. which fallback answered (pooled model, rules)
                "category": r.category,
                "labels": [lb for lb in r.labels if lb in allowed],
                "priority": r.priority,
                "summary": r.summary,
                "confidence": r.confidence,
                "dropped": r.dropped,
                "llm_call_id": call_ids.get(id(r.call)) if r.call else None,
                "created_at": now,
            },
        )
    for rv in outcome.reviews:
        rows.append(
            {
                "item_key": rv.key,
                "content_hash": hashes[rv.key],
                **common,
                "status": "needs_review",
                "reason": rv.reason[:1000],
                "category": None,
                "labels": [],
                "priority": None,
                "summary": None,
                "confidence": None,
                "dropped": [],
                "llm_call_id": call_ids.get(id(rv.call)) if rv.call else None,
                "created_at": now,
            },
        )
    for start in range(0, len(rows), UPSERT_ROWS):
        _upsert_analyses(session, rows[start : start + UPSERT_ROWS])


def _defaulted(rec: CallRecord, purpose: str) -> CallRecord:
    """The record itself, or a copy carrying the run's purpose when it names none."""
    return rec if rec.purpose else replace(rec, purpose=purpose)


def estimate(batch: Sequence[ItemText], prefix_tokens: int, max_item_chars: int) -> int:
    """Tokens a call for `batch` is expected to use (prompt plus answers)."""
    items = sum(estimate_tokens(prompts.render_item("i000", it, max_item_chars)) for it in batch)
    return prefix_tokens + items + OUTPUT_TOKENS_PER_ITEM * len(batch)


def fit(batch: list[ItemText], prefix: int, budget: Budget, max_chars: int) -> list[ItemText]:
    """The longest head of `batch` whose estimate fits the budget (maybe empty)."""
    while batch and not budget.allows(estimate(batch, prefix, max_chars)):
        batch = batch[: len(batch) // 2] if len(batch) > 8 else batch[:-1]
    return batch


def run(
    ctx: Context,
    provider: Classifier,
    *,
    limit: int | None = None,
    reanalyze: bool = False,
    keys: Collection[str] | None = None,
    on_batch: Callable[[RunStats], None] | None = None,
    guard: Callable[[Session], None] | None = None,
) -> RunStats:
    """Analyse everything pending (up to `limit`), stopping cleanly at the token budget.

    `guard` runs first in each store's transaction and may raise to refuse the store (a replica
    whose claim on these items was taken over must not write: triage/db/claims.py).
    """
    config = ctx.config
    taxonomy = Taxonomy.from_config(config)
    stats = RunStats(provider.name, provider.model)
    with ctx.sessions() as s:
        items = pending_items(s, provider, limit=limit, reanalyze=reanalyze, keys=keys)
        texts = [item_text(it) for it in items]
        if not texts:
            return stats
        examples = examples_for(s, config, {t.scope for t in texts})
        # Token budgets meter paid calls; a provider that spends no tokens is never held back.
        metered = spec_for(provider.name).metered
        budget = Budget.load(s, config.llm) if metered else Budget.unlimited()
    stats.planned = len(texts)
    prefix = estimate_tokens(prompts.system_instruction(taxonomy, examples))
    llm = config.llm
    queue = prompts.pack_for(texts, taxonomy, examples, llm)
    reserved: dict[int, int] = {}  # id(head) -> its estimate, counted as spent while in flight
    over_budget = False

    def heads() -> Iterator[list[ItemText]]:
        """The next batch that fits the budget, reserved; chosen only when a worker is free."""
        nonlocal over_budget
        while queue and not stats.stopped:
            batch = queue.pop(0)
            head = fit(batch, prefix, budget, llm.max_item_chars)
            if not head:
                queue.insert(0, batch)
                over_budget = True
                return
            if len(head) < len(batch):
                queue.insert(0, batch[len(head) :])
            reserved[id(head)] = estimate(head, prefix, llm.max_item_chars)
            budget.add(reserved[id(head)])
            yield head

    def work(head: list[ItemText]) -> ClassifyOutcome:
        return provider.classify(head, taxonomy, examples)

    workers = concurrency_for(provider.name, llm.concurrency)
    try:
        # Each call's results are stored as it finishes, in this thread, one transaction each.
        for head, outcome in run_bounded(heads(), work, workers):
            with transaction(ctx.sessions) as s:
                if guard is not None:
                    guard(s)
                store_outcome(s, outcome, {t.key: t.content_hash for t in head}, provider, taxonomy)
            stats.count(outcome)
            used = sum(c.input_tokens + c.output_tokens for c in outcome.calls)
            budget.add(used - reserved.pop(id(head)), sum(c.cost_usd for c in outcome.calls))
            if on_batch:
                on_batch(stats)
            if outcome.stop and not stats.stopped:
                stats.stopped = outcome.stop
        unsent = [t for b in queue for t in b]
        if over_budget and not stats.stopped:
            stats.exhausted = budget.exhausted(len(unsent))
            stats.failed.update({t.key: "not sent: token budget reached" for t in unsent})
        elif stats.stopped:
            stats.failed.update({t.key: f"not sent: {stats.stopped}" for t in unsent})
    finally:
        end_run(provider)
    return stats
