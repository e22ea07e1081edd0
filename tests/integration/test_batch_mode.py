"""Batch Mode: jobs recorded before they exist, never resubmitted, collected by polling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.genai import types
from sqlalchemy import Engine, select

from tests.analysis_support import MIXED, context, gemini_config, item, seed
from tests.fakes.gemini import FakeGemini
from triage.analysis import batch, classify
from triage.context import Context
from triage.db.engine import session_factory, transaction
from triage.db.schema import Analysis, BatchJob, LLMCall
from triage.db.store import utcnow
from triage.providers import prompts
from triage.providers.base import Taxonomy
from triage.providers.gemini.provider import GeminiProvider


@pytest.fixture
def fake(fake_gemini: FakeGemini) -> FakeGemini:
    """The shared fake Gemini (tests/conftest.py), fresh for each test."""
    return fake_gemini


def setup(fake: FakeGemini, engine: Engine, **llm: object) -> tuple[Context, GeminiProvider]:
    ctx = context(gemini_config(fake, **llm), engine)
    provider = ctx.provider("gemini")
    assert isinstance(provider, GeminiProvider)
    return ctx, provider


def rows(engine: Engine, model: type) -> list:  # type: ignore[type-arg]
    with session_factory(engine)() as s:
        return list(s.scalars(select(model)))


def seed_mixed(engine: Engine, extra: list[tuple[str, str]] | None = None) -> None:
    pairs = MIXED + (extra or [])
    seed(engine, [item(i + 1, t, b) for i, (t, b) in enumerate(pairs)])


def test_submit_then_poll_stores_every_answer_at_batch_prices(
    fake: FakeGemini, engine: Engine
) -> None:
    seed_mixed(engine)
    ctx, p = setup(fake, engine, max_items_per_call=2)
    sent = batch.submit(ctx, p)
    assert len(sent.jobs) == 1 and sent.requests == 2 and sent.items == 4
    [job] = rows(engine, BatchJob)
    assert job.name == sent.jobs[0] and job.state == "JOB_STATE_PENDING"
    assert [len(r["keys"]) for r in job.requests] == [2, 2] and job.completed_at is None
    assert fake.generate_calls == 0

    got = batch.poll(ctx, p)
    assert got.collected == sent.jobs and got.outcome is not None and got.retried is None
    assert got.outcome.analysed == 4 and not got.outcome.failed
    stored = {a.item_key: a.category for a in rows(engine, Analysis)}
    assert sorted(stored.values()) == ["bug", "docs", "feature", "question"]
    calls = rows(engine, LLMCall)
    assert len(calls) == 2 and all(c.batch_mode and c.outcome == "ok" for c in calls)
    c = calls[0]
    prices = p.prices  # the catalog's for gemini-3.8-flash today (models.toml)
    full = (c.input_tokens * prices.input + c.output_tokens * prices.output) / 1_000_000
    assert c.cost_usd == pytest.approx(full / 2) and prices.batch == 0.5
    [job] = rows(engine, BatchJob)
    assert job.completed_at is not None and job.state == "JOB_STATE_SUCCEEDED"
    assert batch.poll(ctx, p).collected == []  # collected once only


def test_items_in_a_pending_job_are_never_sent_again(fake: FakeGemini, engine: Engine) -> None:
    seed_mixed(engine)
    ctx, p = setup(fake, engine)
    batch.submit(ctx, p)
    assert batch.submit(ctx, p).jobs == []
    assert classify.run(ctx, p).planned == 0  # nor by an ordinary run
    assert len(fake.batches) == 1 and fake.generate_calls == 0


def test_a_running_job_stays_open_until_it_finishes(fake: FakeGemini, engine: Engine) -> None:
    fake.batch_polls_to_finish = 3
    seed_mixed(engine)
    ctx, p = setup(fake, engine)
    sent = batch.submit(ctx, p)
    first = batch.poll(ctx, p)
    assert first.running == sent.jobs and first.collected == []
    assert rows(engine, BatchJob)[0].state == "JOB_STATE_RUNNING"
    assert rows(engine, Analysis) == []
    batch.poll(ctx, p)
    assert batch.poll(ctx, p).collected == sent.jobs
    assert len(rows(engine, Analysis)) == 4


def test_per_request_errors_are_finished_with_ordinary_calls(
    fake: FakeGemini, engine: Engine
) -> None:
    seed_mixed(engine, [("BATCH-REQUEST-ERROR in this one", "")])
    ctx, p = setup(fake, engine, max_items_per_call=3)
    batch.submit(ctx, p)
    got = batch.poll(ctx, p)
    # newest first: the erroring item and the two before it share the first request
    assert got.outcome is not None and got.outcome.analysed == 2
    assert len(got.outcome.failed) == 3
    assert got.retried is not None and got.retried.analysed == 3 and not got.retried.failed
    assert len(rows(engine, Analysis)) == 5
    errors = [c for c in rows(engine, LLMCall) if c.outcome == "error"]
    assert len(errors) == 1 and errors[0].batch_mode and "batch request failed" in errors[0].error


def test_a_blocked_request_is_narrowed_down_to_the_culprit(
    fake: FakeGemini, engine: Engine
) -> None:
    seed_mixed(engine, [("SAFETY-TRIGGER inside", "")])
    ctx, p = setup(fake, engine)
    batch.submit(ctx, p)
    got = batch.poll(ctx, p)
    assert got.retried is not None and got.retried.reviews == 1
    by_status = {a.item_key: a.status for a in rows(engine, Analysis)}
    assert by_status["github:acme/app#5"] == "needs_review"
    assert list(by_status.values()).count("ok") == 4


def test_jobs_are_split_to_stay_under_the_inline_size_limit(
    fake: FakeGemini, engine: Engine
) -> None:
    seed(engine, [item(i, f"App crashes {i}", "error trace " * 150) for i in range(1, 9)])
    fake.max_batch_bytes = 12_000
    ctx, p = setup(fake, engine, max_items_per_call=2)
    sent = batch.submit(ctx, p, max_bytes=12_000)
    assert len(sent.jobs) >= 2 and sent.items == 8
    assert all(len(r.body) <= 12_000 for r in fake.requests_to(":batchGenerateContent"))
    batch.poll(ctx, p)
    assert len(rows(engine, Analysis)) == 8


def test_a_job_created_by_a_process_that_died_is_found_and_collected(
    fake: FakeGemini, engine: Engine
) -> None:
    seed_mixed(engine)
    ctx, p = setup(fake, engine)
    tax = Taxonomy.from_config(ctx.config)
    with ctx.sessions() as s:
        texts = [classify.item_text(i) for i in classify.pending_items(s, p)]
    ids = prompts.item_ids(len(texts))
    system, schema = prompts.system_instruction(tax, []), prompts.response_model(tax)
    # What the dead process did: it recorded the job, then created it, then died.
    now = utcnow()
    with transaction(ctx.sessions) as s:
        s.add(
            BatchJob(
                name="submitting:triage-dead",
                provider="gemini",
                model=p.model,
                prompt_version=p.prompt_version,
                state=batch.SUBMITTING,
                requests=[
                    {"keys": [t.key for t in texts], "hashes": [t.content_hash for t in texts]}
                ],
                created_at=now,
                updated_at=now,
            )
        )
    request = types.InlinedRequest(
        contents=p.user_prompt(texts, ids),
        config=p.generation_config(schema, system, None),
        metadata={"request": "0"},
    )
    p.client.batches.create(
        model=p.model, src=[request], config=types.CreateBatchJobConfig(display_name="triage-dead")
    )
    assert classify.run(ctx, p).planned == 0  # held by the recorded job
    got = batch.poll(ctx, p)
    assert len(got.collected) == 1 and got.collected[0].startswith("batches/")
    assert len(rows(engine, Analysis)) == 4 and len(fake.batches) == 1


def test_a_job_that_was_never_created_releases_its_items(fake: FakeGemini, engine: Engine) -> None:
    seed_mixed(engine)
    ctx, p = setup(fake, engine)
    old = utcnow() - timedelta(hours=1)
    with transaction(ctx.sessions) as s:
        s.add(
            BatchJob(
                name="submitting:triage-never",
                provider="gemini",
                model=p.model,
                prompt_version=p.prompt_version,
                state=batch.SUBMITTING,
                requests=[{"keys": ["github:acme/app#1"], "hashes": ["x"]}],
                created_at=old,
                updated_at=old,
            )
        )
    batch.poll(ctx, p)
    [job] = rows(engine, BatchJob)
    assert job.state == "NOT_CREATED" and job.completed_at is not None
    assert classify.run(ctx, p).analysed == 4


def test_a_failed_job_puts_its_items_back_in_the_queue(fake: FakeGemini, engine: Engine) -> None:
    fake.fail_batches = True
    seed_mixed(engine)
    ctx, p = setup(fake, engine)
    sent = batch.submit(ctx, p)
    got = batch.poll(ctx, p)
    assert list(got.failed_jobs) == sent.jobs
    assert "JOB_STATE_FAILED" in got.failed_jobs[sent.jobs[0]]
    assert rows(engine, Analysis) == []
    fake.fail_batches = False
    assert len(batch.submit(ctx, p).jobs) == 1


def test_a_job_the_service_no_longer_has_frees_its_items_and_polling_goes_on(
    fake: FakeGemini, engine: Engine
) -> None:
    fake.batch_polls_to_finish = 2
    seed(engine, [item(i, f"App crashes {i}", "error trace " * 150) for i in range(1, 5)])
    ctx, p = setup(fake, engine, max_items_per_call=2)
    sent = batch.submit(ctx, p, max_bytes=6_000)  # one request of two items per job
    assert len(sent.jobs) == 2
    gone, kept = sent.jobs
    del fake.batches[gone.split("/")[-1]]  # expired on the service's side
    first = batch.poll(ctx, p)
    assert "no longer has job" in first.failed_jobs[gone]
    assert first.running == [kept]  # the other job is still polled, and later collected
    assert batch.poll(ctx, p).collected == [kept]
    again = batch.submit(ctx, p)
    assert len(again.jobs) == 1  # the lost job's two items are sent again, the rest are done
    batch.poll(ctx, p)
    batch.poll(ctx, p)
    assert len(rows(engine, Analysis)) == 4


def test_budget_counts_jobs_not_yet_collected(fake: FakeGemini, engine: Engine) -> None:
    seed(engine, [item(i, f"App crashes {i}", "error " * 300) for i in range(1, 5)])
    ctx, p = setup(fake, engine, max_items_per_call=2, daily_token_budget=1500)
    sent = batch.submit(ctx, p, limit=2)
    assert len(sent.jobs) == 1 and sent.exhausted is None
    again = batch.submit(ctx, p)
    assert again.jobs == [] and again.exhausted is not None


def test_an_ordinary_run_counts_jobs_not_yet_collected_too(
    fake: FakeGemini, engine: Engine
) -> None:
    seed(engine, [item(i, f"App crashes {i}", "error " * 300) for i in range(1, 5)])
    ctx, p = setup(fake, engine, max_items_per_call=2, daily_token_budget=1500)
    assert len(batch.submit(ctx, p, limit=2).jobs) == 1
    stats = classify.run(ctx, p)
    assert stats.exhausted is not None and "daily token budget reached" in str(stats.exhausted)
    assert fake.generate_calls == 0 and stats.analysed == 0


def test_submit_and_poll_on_both_databases(fake: FakeGemini, db_url: str) -> None:
    from triage.db import migrate
    from triage.db.engine import make_engine

    eng = make_engine(db_url)
    migrate.upgrade(eng)
    try:
        seed_mixed(eng)
        ctx, p = setup(fake, eng)
        assert len(batch.submit(ctx, p).jobs) == 1
        assert batch.submit(ctx, p).jobs == []
        assert batch.poll(ctx, p).collected and len(rows(eng, Analysis)) == 4
    finally:
        eng.dispose()
