"""The fake Slack keeps the real service's rules, whatever client speaks to it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack import CHANNEL_ID, TOKEN, FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        yield f


def section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_form_body_with_token_argument(fake: FakeSlack) -> None:
    blocks = json.dumps([section("hello")])
    r = httpx.post(
        fake.api_url + "chat.postMessage",
        data={"token": TOKEN, "channel": "#triage", "text": "hi", "blocks": blocks},
    )
    body = r.json()
    assert r.status_code == 200 and body["ok"] is True and body["channel"] == CHANNEL_ID
    assert body["message"]["blocks"] == [section("hello")] and body["ts"] == fake.messages[0].ts


def test_json_body_with_bearer_token(fake: FakeSlack) -> None:
    r = httpx.post(
        fake.api_url + "chat.postMessage",
        json={"channel": CHANNEL_ID, "text": "hi", "thread_ts": "1.000001"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.json()["message"]["thread_ts"] == "1.000001"


@pytest.mark.parametrize(
    ("payload", "headers", "error"),
    [
        ({"channel": "#triage", "text": "x"}, {}, "not_authed"),
        (
            {"channel": "#triage", "text": "x"},
            {"Authorization": "Bearer xoxb-nope"},
            "invalid_auth",
        ),
        ({"channel": "#triage"}, None, "no_text"),
        ({"channel": "#triage", "blocks": [section("x")] * 51}, None, "invalid_blocks"),
        ({"channel": "#triage", "blocks": [section("x" * 3001)]}, None, "invalid_blocks"),
        ({"channel": "#triage", "blocks": [section("x" * 2900)] * 5}, None, "msg_blocks_too_long"),
        ({"channel": "#triage", "text": "x" * 40_001}, None, "msg_too_long"),
        ({"channel": "#nope", "text": "x"}, None, "channel_not_found"),
        ({"channel": "#other", "text": "x"}, None, "not_in_channel"),
    ],
)
def test_refusals_are_ok_false_with_an_error_name(
    fake: FakeSlack, payload: dict[str, object], headers: dict[str, str] | None, error: str
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"} if headers is None else headers
    r = httpx.post(fake.api_url + "chat.postMessage", json=payload, headers=auth)
    assert r.status_code == 200 and r.json()["ok"] is False and r.json()["error"] == error
    assert fake.messages == []


def test_rate_limit_answers_429_with_retry_after(fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", retry_after=7)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(
        fake.api_url + "chat.postMessage", json={"channel": "#triage", "text": "x"}, headers=auth
    )
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert r.json() == {"ok": False, "error": "ratelimited"}
    again = httpx.post(
        fake.api_url + "chat.postMessage", json={"channel": "#triage", "text": "x"}, headers=auth
    )
    assert again.json()["ok"] is True
    assert len(fake.requests_to(r"chat\.postMessage")) == 2


def test_webhook_answers_plain_text(fake: FakeSlack) -> None:
    assert httpx.post(fake.webhook_url, json={"text": "hi"}).text == "ok"
    bad = httpx.post(
        fake.webhook_url, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (bad.status_code, bad.text) == (400, "invalid_payload")
    gone = httpx.post(fake.base_url + "/services/T000/B000/NOPE", json={"text": "hi"})
    assert (gone.status_code, gone.text) == (404, "no_service")
    assert [m.via for m in fake.messages] == ["webhook"]


def test_unknown_method(fake: FakeSlack) -> None:
    r = httpx.post(fake.api_url + "chat.nope", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.json() == {"ok": False, "error": "unknown_method"}


def test_history_is_newest_first_in_pages_with_metadata_on_request(fake: FakeSlack) -> None:
    web = WebClient(token=TOKEN, base_url=fake.api_url)
    meta = {"event_type": "e", "event_payload": {"n": 1}}
    first = web.chat_postMessage(channel="#triage", text="one", metadata=meta)["ts"]
    web.chat_postMessage(channel=CHANNEL_ID, text="reply", thread_ts=first)
    web.chat_postMessage(channel=CHANNEL_ID, text="two")
    web.chat_postMessage(channel=CHANNEL_ID, text="three")

    page = web.conversations_history(channel=CHANNEL_ID, limit=2, include_all_metadata=True)
    assert [m["text"] for m in page["messages"]] == ["three", "two"] and page["has_more"]
    cursor = page["response_metadata"]["next_cursor"]
    rest = web.conversations_history(
        channel=CHANNEL_ID, limit=2, cursor=cursor, include_all_metadata=True
    )
    assert [m["text"] for m in rest["messages"]] == ["one"] and not rest["has_more"]
    assert rest["messages"][0]["metadata"] == meta  # thread replies are not in the history
    plain = web.conversations_history(channel=CHANNEL_ID, oldest=first)
    assert [m["text"] for m in plain["messages"]] == ["three", "two"]  # oldest is exclusive
    assert all("metadata" not in m for m in plain["messages"])
    with pytest.raises(SlackApiError, match="channel_not_found"):
        web.conversations_history(channel="#triage")  # an id, never a name
