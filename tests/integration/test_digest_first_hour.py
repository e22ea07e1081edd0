"""A digest's period and spend as a new user sees them: stretched back, counted up to now."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from triage.config import Config
from triage.db.engine import session_factory, transaction
from triage.db.schema import Delivery, LLMCall
from triage.db.store import utcnow
from triage.digest import build_covering, build_digest
from triage.sinks.slack.blocks import parts
from triage.windows import Window


def _call(when: object) -> LLMCall:
    return LLMCall(
        provider="gemini", model="m", purpose="classify", input_tokens=10, cached_tokens=0,
        output_tokens=5, cost_usd=0.001, created_at=when,
    )  # fmt: skip


def test_model_spend_counts_calls_up_to_the_moment_the_digest_is_built(engine: Engine) -> None:
    sessions = session_factory(engine)
    window = Window.ending("1d")  # ends at the top of this hour
    with transaction(sessions) as s:
        s.add(_call(utcnow() - timedelta(seconds=1)))  # after the window's rounded end
    with sessions() as s:
        assert build_digest(s, Config(), window).spend.calls == 1


def test_an_empty_digest_leaves_out_empty_slack_sections_and_says_what_to_do(
    engine: Engine,
) -> None:
    with session_factory(engine)() as s:
        d = build_digest(s, Config(), Window.ending("1d"))
    assert parts(d) == []
    assert "nothing stored yet" in d.empty_hint


def test_the_same_hour_again_is_the_same_window_so_it_is_delivered_once(engine: Engine) -> None:
    sessions = session_factory(engine)
    window = Window.ending("1d")
    start = window.start - timedelta(days=30)
    with transaction(sessions) as s:  # the first digest here reached back 31 days
        s.add(Delivery(sink="slack", target="#t", window_start=start, window_end=window.end,
                       ref="1.2", delivered_at=utcnow()))  # fmt: skip
    with sessions() as s:
        again = build_covering(s, Config(), window, "slack")
        later = build_covering(
            s, Config(), Window.ending("1d", window.end + timedelta(days=2)), "slack"
        )
    assert (again.start, again.end) == (start, window.end)
    # Two days on: from the previous digest's end, not just the last day.
    assert later.start == window.end and "previous digest" in later.coverage
