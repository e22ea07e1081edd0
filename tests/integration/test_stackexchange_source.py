"""The Stack Exchange source against the fake API: paging, incremental sync, limits, faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.fakes.stackexchange import START, FakeStackExchange
from triage import ingest
from triage.clients.stackexchange import StackExchangeClient
from triage.config import Config, Secrets
from triage.context import Context
from triage.db import migrate
from triage.db.schema import Cursor, Item
from triage.errors import ConfigError, QuotaExhausted, SourceError
from triage.sources import stackexchange
from triage.sources.base import format_cursor, parse_cursor
from triage.sources.stackexchange import StackExchangeSource

TAG = "google-gemini"


@pytest.fixture
def fake() -> Iterator[FakeStackExchange]:
    with FakeStackExchange() as server:
        yield server


def make_ctx(db_url: str, fake: FakeStackExchange, key: str | None = None, **se: Any) -> Context:
    cfg = Config.model_validate(
        {"database": {"url": db_url}, "stackexchange": {"api_url": fake.base_url, **se}}
    )
    ctx = Context(config=cfg, secrets=Secrets(stackexchange_key=key))
    migrate.upgrade(ctx.engine)
    return ctx


def source(ctx: Context, tag: str = TAG, site: str = "stackoverflow") -> StackExchangeSource:
    """A source whose client retries fast, so fault tests stay quick."""
    client = StackExchangeClient(ctx.config.stackexchange, None, retry_base=0.01)
    return StackExchangeSource(client, site, tag)


def backfill(ctx: Context, src: Any, since: datetime | None = None) -> ingest.RunStats:
    name = ingest.backfill_cursor_name(src, since)
    return ingest.run(ctx.sessions, src, name, since=since, advance_sync=True)


def sync(ctx: Context, src: Any) -> ingest.RunStats:
    return ingest.run(ctx.sessions, src, ingest.sync_cursor_name(src))


def count(ctx: Context) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Item)) or 0)


def item(ctx: Context, qid: int) -> Item:
    with ctx.sessions() as s:
        row = s.get(Item, f"stackexchange:stackoverflow/{qid}")
        assert row is not None
        return row


def add_many(fake: FakeStackExchange, n: int, **fields: Any) -> list[int]:
    return [fake.add_question(f"Question {i}", **fields).question_id for i in range(n)]


def test_backfill_pages_through_every_question_at_about_ten_requests_per_thousand(
    db_url: str,
) -> None:
    with FakeStackExchange(1000) as fake:
        ctx = make_ctx(db_url, fake)
        [src] = stackexchange.make_sources(ctx, [TAG], "stackoverflow")
        stats = backfill(ctx, src)
        assert stats.done and count(ctx) == 1000 and stats.new == 1000
        calls = fake.question_calls()
        assert len(calls) == stats.requests <= 11
        for call in calls:
            assert call.arg("tagged") == TAG and call.arg("site") == "stackoverflow"
            assert (call.arg("sort"), call.arg("order")) == ("activity", "asc")
            assert call.arg("pagesize") == "100" and call.arg("filter") == "withbody"
            assert int(call.arg("page") or 1) == 1  # never deep pages
            assert call.arg("key") is None and call.arg("fromdate") is None
        # Each query starts at the last activity date of the page before.
        assert calls[0].arg("min") is None
        assert all(c.arg("min") for c in calls[1:])
        with ctx.sessions() as s:
            cur = s.get(Cursor, ingest.backfill_cursor_name(src, None))
            sync_cur = s.get(Cursor, ingest.sync_cursor_name(src))
            newest = s.scalar(select(func.max(Item.updated_at)))
        assert cur is not None and sync_cur is not None and newest is not None
        assert cur.value == sync_cur.value == format_cursor(newest)
        assert stats.quota_remaining == 300 - len(calls)


def test_page_sharing_one_activity_date_steps_to_the_next_page(fake: FakeStackExchange) -> None:
    same = add_many(fake, 230, created=START, activity=START)
    later = [fake.add_question("L", created=START + 100 + i).question_id for i in range(150)]
    ctx = make_ctx("sqlite://", fake)
    stats = backfill(ctx, source(ctx))
    assert count(ctx) == len(same) + len(later) == 380
    pages = [(c.arg("min"), c.arg("page")) for c in fake.question_calls()]
    # Pages 1-2 are all START; page 3 ends 70 questions into the later ones (START+100+69).
    assert pages == [(None, None), (str(START), "2"), (str(START), "3"), (str(START + 169), None)]
    assert stats.done


def test_resume_inside_a_run_of_one_date_keeps_the_page(fake: FakeStackExchange) -> None:
    add_many(fake, 230, created=START, activity=START)
    ctx = make_ctx("sqlite://", fake)
    src = source(ctx)
    name = ingest.backfill_cursor_name(src, None)
    ingest.run(ctx.sessions, src, name, limit=100)  # stop after the first page
    with ctx.sessions() as s:
        cur = s.get(Cursor, name)
        assert cur is not None and cur.state["page"] == 2
    ingest.run(ctx.sessions, src, name)
    assert count(ctx) == 230
    assert [c.arg("page") for c in fake.question_calls()] == [None, "2", "3"]


def test_sync_picks_up_only_changes(db_url: str) -> None:
    with FakeStackExchange(300) as fake:
        ctx = make_ctx(db_url, fake)
        src = source(ctx)
        backfill(ctx, src)
        before = len(fake.question_calls())
        edited, answered = 70_000_005, 70_000_010
        fake.edit_question(edited, title="Edited &amp; better title")
        fake.answer_question(answered, accepted=True)
        new = fake.add_question("Brand new", tags=[TAG]).question_id

        stats = sync(ctx, src)
        calls = fake.question_calls()[before:]
        assert len(calls) == 1 and calls[0].arg("min") is not None
        assert (stats.new, stats.updated) == (1, 2)
        assert stats.items <= 4  # the three changes plus the boundary question
        assert count(ctx) == 301
        assert item(ctx, edited).title == "Edited & better title"
        assert item(ctx, answered).is_answered and item(ctx, answered).answer_count == 1
        assert item(ctx, new).title == "Brand new"

        # Nothing new: one request, nothing written as new or updated.
        stats = sync(ctx, src)
        assert stats.requests == 1 and stats.new == stats.updated == 0


def test_backfill_since_bounds_creation_dates_with_fromdate(fake: FakeStackExchange) -> None:
    old = fake.add_question("Old", created=START, activity=START)
    recent = [fake.add_question(f"R{i}", created=START + 86_400 + i).question_id for i in range(5)]
    ctx = make_ctx("sqlite://", fake)
    src = source(ctx)
    since = datetime(2023, 11, 15, 12, 0, 0)  # after START (2023-11-14T22:13:20Z)
    backfill(ctx, src, since=since)
    assert {c.arg("fromdate") for c in fake.question_calls()} == {str(int(since.timestamp()))}
    assert count(ctx) == len(recent)
    # Sync uses the activity cursor only, so an edit to an older question still comes back.
    fake.edit_question(old.question_id, body="<p>now edited</p>")
    before = len(fake.question_calls())
    sync(ctx, src)
    assert all(c.arg("fromdate") is None for c in fake.question_calls()[before:])
    assert item(ctx, old.question_id).body == "now edited"


def test_rerun_adds_no_duplicates_and_applies_updates(db_url: str) -> None:
    with FakeStackExchange(150) as fake:
        ctx = make_ctx(db_url, fake)
        src = source(ctx)
        backfill(ctx, src)
        fake.edit_question(70_000_003, body="<p>changed <code>x &lt; y</code></p>", score=9)
        with ctx.sessions() as s, s.begin():
            s.delete(s.get(Cursor, ingest.backfill_cursor_name(src, None)))
        stats = backfill(ctx, src)  # from scratch
        assert count(ctx) == 150 and stats.new == 0 and stats.updated == 1
        row = item(ctx, 70_000_003)
        assert (row.body, row.score) == ("changed `x < y`", 9)


def test_question_with_two_watched_tags_is_one_item(fake: FakeStackExchange) -> None:
    fake.add_question("Both", tags=[TAG, "gemini-api"])
    fake.add_question("Only other", tags=["gemini-api"])
    ctx = make_ctx("sqlite://", fake)
    sources = stackexchange.make_sources(ctx, [TAG, "gemini-api", TAG], "stackoverflow")
    assert [s.name for s in sources] == [
        "stackexchange:stackoverflow/google-gemini",
        "stackexchange:stackoverflow/gemini-api",
    ]
    for src in sources:
        sync(ctx, src)
    assert count(ctx) == 2


def test_html_entities_and_markup_become_text(fake: FakeStackExchange) -> None:
    q = fake.add_question(
        "Error &quot;400&quot; with List&lt;Part&gt; &amp; streaming &#8211; why?",
        '<p>Calling <code>stream()</code> fails, see <a href="https://x.dev/a">docs</a>:</p>'
        '<pre class="lang-js prettyprint-override"><code>if (a &lt; b &amp;&amp; c) {\n'
        "  run(&quot;x&quot;);\n}\n</code></pre>",
        tags=[TAG, "javascript"],
        owner="Jos&#233; O&#39;Neil",
        score=3,
        view_count=42,
        comment_count=2,
        answer_count=2,
        is_answered=True,
        accepted_answer_id=123,
    )
    fake.edit_question(q.question_id, closed_date=fake.now(), closed_reason="Duplicate")
    ctx = make_ctx("sqlite://", fake, filter="!customFilterWithComments")
    sync(ctx, source(ctx))
    row = item(ctx, q.question_id)
    assert row.title == 'Error "400" with List<Part> & streaming – why?'
    assert row.body == (
        "Calling `stream()` fails, see docs (https://x.dev/a):\n\n"
        '```js\nif (a < b && c) {\n  run("x");\n}\n```'
    )
    assert row.author == "José O'Neil"
    assert row.tags == [TAG, "javascript"]
    assert (row.score, row.view_count, row.comments, row.answer_count) == (3, 42, 2, 2)
    assert row.is_answered and row.accepted_answer_id == 123
    assert (row.state, row.state_reason) == ("closed", "Duplicate")
    assert row.closed_at is not None and row.url.startswith("https://stackoverflow.com/questions/")
    assert row.created_at == datetime(2023, 11, 14, 22, 14, 20)
    assert row.extra["owner_user_id"] == 1


def test_backoff_is_honoured_across_pages_and_sources(fake: FakeStackExchange) -> None:
    add_many(fake, 150)
    fake.add_question("Other tag", tags=["other"])
    fake.set_backoff(1, times=1)  # only the first answer asks for a pause
    ctx = make_ctx("sqlite://", fake)
    backfill(ctx, source(ctx))
    first, second = fake.stamped[0][0], fake.stamped[1][0]
    assert second - first >= 1.0
    # A later source with its own client still waits for a backoff it did not receive.
    fake.set_backoff(1, times=1)
    other = make_ctx("sqlite://", fake)
    other_src = source(other, tag="other")
    asked = time.time()
    sync(other, other_src)
    with other.sessions() as s:  # kept with the cursor, for the next process
        cur = s.get(Cursor, ingest.sync_cursor_name(other_src))
        assert cur is not None and cur.state["backoff_until"] >= asked + 1
    start = len(fake.stamped)
    sync(other, source(other, tag=TAG))
    assert fake.stamped[start][0] - fake.stamped[start - 1][0] >= 1.0
    assert fake.backoff_violations == 0


def test_throttle_violations_are_retried(fake: FakeStackExchange) -> None:
    add_many(fake, 20)
    fake.throttle(times=2)  # "Violation of backoff parameter"
    ctx = make_ctx("sqlite://", fake)
    stats = backfill(ctx, source(ctx))
    assert stats.done and count(ctx) == 20 and len(fake.question_calls()) == 3
    assert stats.requests == 3  # the retries are counted: they use up quota too


def test_throttle_naming_a_short_wait_waits_that_long(fake: FakeStackExchange) -> None:
    add_many(fake, 5)
    fake.throttle(seconds=1)
    ctx = make_ctx("sqlite://", fake)
    backfill(ctx, source(ctx))
    first, second = fake.stamped[0][0], fake.stamped[1][0]
    assert second - first >= 1.0 and count(ctx) == 5


def test_quota_used_up_stops_cleanly_keeps_cursor_and_resumes(db_url: str) -> None:
    with FakeStackExchange(500) as fake:
        fake.set_quota(remaining=3)
        ctx = make_ctx(db_url, fake, max_backoff_wait=5)
        src = source(ctx)
        name = ingest.backfill_cursor_name(src, None)
        with pytest.raises(QuotaExhausted) as exc:
            backfill(ctx, src)
        message = str(exc.value)
        assert "quota" in message and "UTC" in message and "saved" in message
        assert "STACKEXCHANGE_KEY" in message and "\n" not in message
        assert len(fake.question_calls()) == 3  # no request is sent once the quota is 0
        saved = count(ctx)
        assert 290 <= saved < 500
        with ctx.sessions() as s:
            cur = s.get(Cursor, name)
            assert cur is not None and cur.value and not cur.state.get("done")
            cursor = cur.value

        # Another process while the quota is still spent: the throttle names hours, so it stops.
        with pytest.raises(QuotaExhausted):
            backfill(ctx, source(ctx))

        fake.reset_quota()
        before = len(fake.question_calls())
        stats = backfill(ctx, source(ctx))
        first = fake.question_calls()[before + 0]
        assert first.arg("min") == str(int(parse_cursor(cursor).timestamp()))
        assert stats.done and count(ctx) == 500 and stats.new == 500 - saved


def test_key_raises_quota_and_is_sent(fake: FakeStackExchange) -> None:
    add_many(fake, 3)
    ctx = make_ctx("sqlite://", fake, key="k-123")
    [src] = stackexchange.make_sources(ctx, [TAG], "stackoverflow")
    stats = sync(ctx, src)
    assert fake.question_calls()[0].arg("key") == "k-123"
    assert stats.quota_remaining == 9_999


def test_refused_key_is_a_clear_error_without_the_key(fake: FakeStackExchange) -> None:
    fake.valid_keys = {"good"}
    ctx = make_ctx("sqlite://", fake, key="secret-key-value")
    [src] = stackexchange.make_sources(ctx, [TAG], "stackoverflow")
    with pytest.raises(SourceError) as exc:
        sync(ctx, src)
    assert "STACKEXCHANGE_KEY" in str(exc.value) and "secret-key-value" not in str(exc.value)


def test_unknown_site_is_a_one_line_error(fake: FakeStackExchange) -> None:
    ctx = make_ctx("sqlite://", fake)
    [src] = stackexchange.make_sources(ctx, [TAG], "nosuchsite")
    with pytest.raises(SourceError) as exc:
        sync(ctx, src)
    assert "nosuchsite" in str(exc.value) and "\n" not in str(exc.value)


def test_server_errors_and_timeouts_are_retried_then_give_up(fake: FakeStackExchange) -> None:
    add_many(fake, 5)
    ctx = make_ctx("sqlite://", fake, timeout=0.3, max_retries=2)
    fake.fail(503)
    fake.fail(500, body="<html>Internal error</html>")
    sync(ctx, source(ctx))
    assert count(ctx) == 5 and len(fake.question_calls()) == 3

    fake.stall(1.0)
    sync(ctx, source(ctx))
    assert len(fake.question_calls()) == 5  # the stalled call and its retry

    fake.fail(503, times=3)
    with pytest.raises(SourceError) as exc:
        sync(ctx, source(ctx))
    assert "after 3 attempts" in str(exc.value) and "re-run" in str(exc.value)


def test_wrong_api_url_and_filter_without_bodies(fake: FakeStackExchange) -> None:
    add_many(fake, 2)
    ctx = make_ctx("sqlite://", fake, filter="default")
    with pytest.raises(ConfigError, match="withbody"):
        sync(ctx, source(ctx))
    cfg = ctx.config.stackexchange.model_copy(update={"api_url": fake.base_url[: -len("/2.3")]})
    bare = StackExchangeSource(StackExchangeClient(cfg), "stackoverflow", TAG)
    with pytest.raises(SourceError, match="api_url"):
        sync(ctx, bare)


def test_a_backfill_since_a_date_never_moves_sync_past_activity_on_older_questions(
    fake: FakeStackExchange,
) -> None:
    old = add_many(fake, 20, created=START, activity=START)[0]
    ctx = make_ctx("sqlite://", fake)
    src = source(ctx)
    backfill(ctx, src)  # sync would continue from START
    edited = fake.edit_question(old, title="Edited old question")
    fake.add_question("Asked later", created=edited.last_activity_date + 60)

    since = datetime.fromtimestamp(edited.last_activity_date + 30, UTC)
    backfill(ctx, src, since=since)  # fromdate: only the question asked later
    assert item(ctx, old).title != "Edited old question"
    sync(ctx, src)

    assert item(ctx, old).title == "Edited old question"


@pytest.mark.parametrize(
    "site", ["StackOverflow", "stackoverflow.com", "https://stackoverflow.com/"]
)
def test_a_site_given_by_its_domain_keys_items_like_its_short_name(
    fake: FakeStackExchange, site: str
) -> None:
    qid = fake.add_question("One").question_id
    ctx = make_ctx("sqlite://", fake)
    [src] = stackexchange.make_sources(ctx, [TAG], site)

    sync(ctx, src)

    assert src.name == f"stackexchange:stackoverflow/{TAG}"
    assert fake.question_calls()[0].arg("site") == "stackoverflow"
    assert item(ctx, qid).key == f"stackexchange:stackoverflow/{qid}"
