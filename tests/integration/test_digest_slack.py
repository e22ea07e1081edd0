"""The Slack sink against the fake Slack server, through the real slack-sdk clients."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select, update

from tests.digest_seed import Seed, hours
from tests.fakes.server import Response
from tests.fakes.slack import CHANNEL_ID, TOKEN, WEBHOOK_PATH, FakeSlack
from triage.config import Config, Secrets
from triage.context import Context
from triage.db import deliveries, migrate
from triage.db.engine import make_engine
from triage.db.schema import Delivery
from triage.db.store import utcnow
from triage.digest import Digest, build_digest
from triage.errors import ConfigError, DeliveryError
from triage.sinks import slack
from triage.windows import Window

END = datetime(2025, 5, 12, 9)
WINDOW = Window.ending("1d", END)
INJECTIONS = ["<!channel> urgent", "<https://evil.example|click>", "<@U0ADMIN> & <!here>"]


@pytest.fixture
def any_engine(db_url: str) -> Iterator[Engine]:
    """A migrated SQLite database, and PostgreSQL when configured."""
    eng = make_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        yield f


def make_ctx(
    engine: Engine,
    fake: FakeSlack,
    token: str | None = TOKEN,
    webhook: str | None = None,
    **settings: Any,
) -> Context:
    cfg = Config.model_validate(
        {
            "database": {"url": engine.url.render_as_string(hide_password=False)},
            "slack": {"base_url": fake.api_url, "channel": "#triage", **settings.pop("slack", {})},
            **settings,
        }
    )
    secrets = Secrets(
        slack_bot_token=SecretStr(token) if token else None,
        slack_webhook_url=SecretStr(webhook) if webhook else None,
    )
    return Context(config=cfg, secrets=secrets)


def seed_small(engine: Engine) -> None:
    s = Seed(engine)
    theme = s.theme(INJECTIONS[0])
    keys = [
        s.item(END - hours(i + 1), "github" if i % 2 else "stackexchange", title=t)
        for i, t in enumerate(INJECTIONS)
    ]
    for k in keys:
        s.assign(k, theme)
        s.analysis(k, "bug", "high", summary="fails <!everyone>")
    s.duplicate(keys[0], keys[1], END - hours(1), reason="same <https://evil.example|link>")
    s.flush()


def seed_large(engine: Engine, themes: int = 60, dups: int = 90) -> None:
    """Enough themes and duplicates that one Slack message cannot hold them."""
    s = Seed(engine)
    for t in range(themes):
        tid = s.theme(f"Theme {t:03d} " + "about a long recurring problem " * 3)
        for e in range(3 + (themes - t)):
            key = s.item(END - hours(1 + (e % 20)), title=f"Theme {t:03d} example {e} " + "x" * 120)
            s.assign(key, tid)
    for d in range(dups):
        a = s.item(END - hours(2), title=f"Dup {d} left")
        b = s.item(END - hours(3), "stackexchange", title=f"Dup {d} right")
        s.duplicate(a, b, END - hours(1), 0.8, f"reason-{d:03d}: both describe the same crash " * 4)
    s.flush()


def build(ctx: Context) -> Digest:
    with ctx.sessions() as session:
        return build_digest(session, ctx.config, WINDOW)


def everything(fake: FakeSlack) -> str:
    return json.dumps([(m.text, m.blocks) for m in fake.messages], ensure_ascii=False)


def slack_rows(ctx: Context) -> list[Delivery]:
    with ctx.sessions() as s:
        return list(s.scalars(select(Delivery).where(Delivery.sink == "slack")))


def test_posts_one_message_with_every_untrusted_string_escaped(
    engine: Engine, fake: FakeSlack
) -> None:
    seed_small(engine)
    ctx = make_ctx(engine, fake, slack={"upload_chart": False})
    outcome = slack.deliver(ctx, build(ctx))
    assert outcome.status == "posted" and outcome.posted == 1
    [msg] = fake.messages
    assert msg.channel == CHANNEL_ID and msg.thread_ts is None
    assert msg.text.startswith("Triage digest") and "new item" in msg.text
    sent = everything(fake)
    for raw in ("<!channel>", "<!here>", "<!everyone>", "<@U0ADMIN>", "<https://evil"):
        assert raw not in sent
    assert "&lt;!channel&gt; urgent" in sent
    assert "|&lt;https://evil.example|click&gt;>" in sent  # the title inside a link we built
    assert "&lt;@U0ADMIN&gt; &amp; &lt;!here&gt;" in sent
    assert "<https://github.com/acme/widgets/issues/2|" in sent  # links we build stay links
    assert msg.args["unfurl_links"] is False


def test_same_window_is_posted_once_and_force_posts_again(
    any_engine: Engine, fake: FakeSlack
) -> None:
    seed_small(any_engine)
    ctx = make_ctx(any_engine, fake, slack={"upload_chart": False})
    d = build(ctx)
    first = slack.deliver(ctx, d)
    again = slack.deliver(ctx, build(ctx))
    assert (first.status, again.status) == ("posted", "skipped")
    assert "already posted" in again.detail and len(fake.messages) == 1
    forced = slack.deliver(ctx, d, force=True)
    assert forced.status == "posted" and len(fake.messages) == 2
    [row] = slack_rows(ctx)
    assert (row.target, row.window_start, row.window_end) == ("#triage", WINDOW.start, END)
    assert json.loads(row.ref or "")["ts"] == fake.messages[1].ts


def test_large_digest_arrives_complete_in_a_thread(engine: Engine, fake: FakeSlack) -> None:
    seed_large(engine)
    ctx = make_ctx(engine, fake, digest={"top_themes": 60}, slack={"upload_chart": False})
    d = build(ctx)
    assert len(d.themes) == 60 and len(d.duplicates) == 90
    outcome = slack.deliver(ctx, d)
    parent, *replies = fake.messages
    assert len(replies) >= 2 and outcome.posted == 1 + len(replies)
    assert parent.thread_ts is None and all(r.thread_ts == parent.ts for r in replies)
    assert all(len(m.blocks) <= 50 for m in fake.messages)
    assert f"{len(replies)} more messages" in json.dumps(parent.blocks)
    assert "Theme 000 about" in json.dumps(parent.blocks)  # the parent is filled first
    assert "*Top themes (60 of 60 active)* (continued)" in json.dumps(replies[0].blocks)
    assert all(r.text.startswith("Triage digest") and "part" in r.text for r in replies)
    sent = everything(fake)
    for t in range(60):
        assert f"Theme {t:03d} about" in sent
    for n in range(90):
        assert f"reason-{n:03d}" in sent
    assert sent.index("Theme 059 about") < sent.index("reason-000")  # reading order kept


def test_rate_limit_is_retried(engine: Engine, fake: FakeSlack) -> None:
    seed_small(engine)
    ctx = make_ctx(engine, fake, slack={"upload_chart": False})
    fake.rate_limit("chat.postMessage", times=2, retry_after=0)
    assert slack.deliver(ctx, build(ctx)).status == "posted"
    assert len(fake.requests_to(r"chat\.postMessage")) == 3 and len(fake.messages) == 1


def test_rate_limit_that_never_ends_is_one_clear_error(engine: Engine, fake: FakeSlack) -> None:
    seed_small(engine)
    ctx = make_ctx(engine, fake, slack={"upload_chart": False})
    fake.rate_limit("chat.postMessage", times=10, retry_after=0)
    with pytest.raises(DeliveryError, match="rate-limiting after 3 retries"):
        slack.deliver(ctx, build(ctx))
    assert len(fake.requests_to(r"chat\.postMessage")) == 4
    assert slack_rows(ctx) == []  # nothing posted, nothing recorded: the next run posts


@pytest.mark.parametrize(
    ("channel", "token", "expected"),
    [
        ("#does-not-exist", TOKEN, "Slack channel #does-not-exist not found"),
        ("#other", TOKEN, "not a member of #other: run `/invite @<app>`"),
        ("#triage", "xoxb-wrong-token-value", "rejected SLACK_BOT_TOKEN (invalid_auth)"),
    ],
)
def test_slack_errors_are_clear_and_record_nothing(
    engine: Engine, fake: FakeSlack, channel: str, token: str, expected: str
) -> None:
    seed_small(engine)
    ctx = make_ctx(engine, fake, token=token, slack={"channel": channel})
    with pytest.raises(DeliveryError) as err:
        slack.deliver(ctx, build(ctx))
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert token not in str(err.value)
    assert slack_rows(ctx) == [] and fake.messages == []


def test_missing_scope_names_the_scope(engine: Engine, fake: FakeSlack) -> None:
    seed_small(engine)
    ctx = make_ctx(engine, fake)
    fake.fail("chat.postMessage", "missing_scope", needed="chat:write")
    with pytest.raises(DeliveryError, match="lacks the chat:write scope"):
        slack.deliver(ctx, build(ctx))


def test_stopped_delivery_resumes_in_the_same_thread(any_engine: Engine, fake: FakeSlack) -> None:
    seed_large(any_engine)
    ctx = make_ctx(any_engine, fake, digest={"top_themes": 60}, slack={"upload_chart": False})
    fake.fail_posts[3] = "fatal_error"
    with pytest.raises(DeliveryError, match=r"posted 2 of \d+ messages; re-run"):
        slack.deliver(ctx, build(ctx))
    assert len(fake.messages) == 2
    outcome = slack.deliver(ctx, build(ctx))
    assert outcome.status == "posted" and "resumed after 2" in outcome.detail
    parent, *replies = fake.messages
    assert parent.thread_ts is None and all(r.thread_ts == parent.ts for r in replies)
    parts = [re.search(r"\(part (\d+)/(\d+)\)", r.text).groups() for r in replies]  # type: ignore[union-attr]
    assert parts == [(str(i), str(len(replies) + 1)) for i in range(2, len(replies) + 2)]
    assert slack.deliver(ctx, build(ctx)).status == "skipped"


def test_a_failed_takeover_of_a_dead_runs_claim_does_not_block_the_next_run(
    engine: Engine, fake: FakeSlack
) -> None:
    seed_small(engine)
    ctx = make_ctx(engine, fake, slack={"upload_chart": False})
    # A run claimed the window, posted nothing and died long ago.
    assert deliveries.claim(ctx.sessions, "slack", "#triage", WINDOW.start, END)
    with ctx.sessions() as s, s.begin():
        s.execute(update(Delivery).values(delivered_at=utcnow() - timedelta(hours=1)))
    fake.fail("chat.postMessage", "not_in_channel")  # the takeover fails: the app is not invited
    with pytest.raises(DeliveryError, match="not a member"):
        slack.deliver(ctx, build(ctx))
    outcome = slack.deliver(ctx, build(ctx))  # invited now: the retry posts at once
    assert outcome.status == "posted" and len(fake.messages) == 1


def test_chart_is_uploaded_into_the_thread(engine: Engine, fake: FakeSlack) -> None:
    seed_small(engine)
    ctx = make_ctx(engine, fake)
    outcome = slack.deliver(ctx, build(ctx))
    assert outcome.status == "posted" and "chart" not in outcome.detail
    [upload] = fake.uploads.values()
    assert upload.data is not None and upload.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert upload.length == len(upload.data)
    assert (upload.channel, upload.thread_ts) == (CHANNEL_ID, fake.messages[0].ts)


def test_chart_upload_failure_is_a_warning_not_a_failure(engine: Engine, fake: FakeSlack) -> None:
    seed_small(engine)
    ctx = make_ctx(engine, fake)
    fake.fail("files.getUploadURLExternal", "missing_scope", needed="files:write")
    outcome = slack.deliver(ctx, build(ctx))
    assert outcome.status == "posted" and len(fake.messages) == 1
    assert "chart not uploaded" in outcome.detail and "files:write" in outcome.detail
    assert slack.deliver(ctx, build(ctx)).status == "skipped"


def test_dry_run_sends_and_records_nothing(engine: Engine, fake: FakeSlack) -> None:
    seed_small(engine)
    ctx = make_ctx(engine, fake)
    printed: list[str] = []
    outcome = slack.deliver(ctx, build(ctx), dry_run=True, echo=printed.append)
    assert outcome.status == "dry-run" and "would post 1 message(s) to #triage" in outcome.detail
    payload = json.loads(printed[0])
    assert payload["channel"] == "#triage" and payload["blocks"][0]["type"] == "header"
    assert fake.requests == [] and slack_rows(ctx) == []


def test_webhook_posts_in_order_and_once(engine: Engine, fake: FakeSlack) -> None:
    seed_large(engine, themes=40, dups=60)
    ctx = make_ctx(engine, fake, token=None, webhook=fake.webhook_url)
    ctx.config.digest.top_themes = 40
    outcome = slack.deliver(ctx, build(ctx))
    assert outcome.status == "posted" and len(fake.messages) == outcome.posted > 1
    assert all(m.via == "webhook" and m.thread_ts is None for m in fake.messages)
    assert "in the next messages" in json.dumps(fake.messages[0].blocks)
    assert "reason-059" in everything(fake)
    [row] = slack_rows(ctx)
    assert row.target.startswith("webhook:") and "XXX" not in row.target  # the URL is a secret
    assert slack.deliver(ctx, build(ctx)).status == "skipped"


def test_webhook_rate_limit_is_retried(engine: Engine, fake: FakeSlack) -> None:
    seed_small(engine)
    ctx = make_ctx(engine, fake, token=None, webhook=fake.webhook_url)
    fake.rate_limit("/services/", times=1, retry_after=0)
    assert slack.deliver(ctx, build(ctx)).status == "posted"
    assert len(fake.requests_to("/services/")) == 2


@pytest.mark.parametrize(
    ("path", "fault", "expected"),
    [
        ("/services/T000/B000/GONE", None, "not a live incoming webhook (no_service)"),
        (WEBHOOK_PATH, Response(400, "invalid_payload"), "refused the webhook payload"),
        (WEBHOOK_PATH, Response(410, "channel_is_archived"), "channel is archived"),
    ],
)
def test_webhook_errors_are_clear(
    engine: Engine, fake: FakeSlack, path: str, fault: Response | None, expected: str
) -> None:
    seed_small(engine)
    url = fake.base_url + path
    ctx = make_ctx(engine, fake, token=None, webhook=url)
    if fault is not None:
        fake.add_fault(fault, path="/services/")
    with pytest.raises(DeliveryError) as err:
        slack.deliver(ctx, build(ctx))
    assert expected in str(err.value) and url not in str(err.value) and "XXX" not in str(err.value)
    assert slack_rows(ctx) == []


def test_no_slack_credentials_is_a_config_error(engine: Engine, fake: FakeSlack) -> None:
    ctx = make_ctx(engine, fake, token=None)
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        slack.deliver(ctx, build(ctx))


def test_doctor_check(engine: Engine, fake: FakeSlack) -> None:
    assert "Fake Workspace" in slack.check(make_ctx(engine, fake))
    with pytest.raises(DeliveryError, match="invalid_auth"):
        slack.check(make_ctx(engine, fake, token="xoxb-nope-nope-nope"))
    webhook = make_ctx(engine, fake, token=None, webhook=fake.webhook_url)
    assert "webhook configured" in slack.check(webhook)
    assert "not configured" in slack.check(make_ctx(engine, fake, token=None))
