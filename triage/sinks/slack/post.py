"""One Slack message (or the chart) through the context's clients, failures as one line."""

from __future__ import annotations

from typing import Any
from urllib.error import URLError

from slack_sdk.errors import SlackClientError

from triage.clients.slack import SlackClients
from triage.digest import Digest
from triage.errors import DeliveryError
from triage.sinks import chart
from triage.sinks.slack.blocks import Message
from triage.sinks.slack.errors import api_error, webhook_error

# Each part carries which digest and part it is, so a run that stopped while posting can ask
# the thread what arrived (https://docs.slack.dev/messaging/message-metadata).
PART_EVENT = "triage_digest_part"


def post_bot(
    slack: SlackClients,
    channel: str,
    msg: Message,
    thread_ts: str | None,
    part: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Post as the bot; returns the channel id and message ts a thread continues from."""
    metadata = {"event_type": PART_EVENT, "event_payload": part} if part else None
    try:
        resp = slack.web.chat_postMessage(
            channel=channel,
            text=msg.text,
            blocks=msg.blocks,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            metadata=metadata,
        )
    except (SlackClientError, URLError, OSError) as exc:
        raise api_error(exc, channel, "chat.postMessage") from None
    return str(resp.get("channel") or channel), str(resp.get("ts") or "")


def parts_in_thread(slack: SlackClients, channel: str, ts: str, window: str) -> set[int]:
    """The digest parts of `window` already in the thread (conversations.replies)."""
    found: set[int] = set()
    cursor: str | None = None
    while True:
        try:
            resp = slack.web.conversations_replies(
                channel=channel, ts=ts, include_all_metadata=True, limit=200, cursor=cursor
            )
        except (SlackClientError, URLError, OSError) as exc:
            raise api_error(exc, channel, "conversations.replies") from None
        for message in resp.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == PART_EVENT and payload.get("window") == window:
                found.add(int(payload.get("part", -1)))
        cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return found


def find_parent(
    slack: SlackClients, channel_id: str, oldest: float, window: str, target: str
) -> str | None:
    """The ts of this bot's first part of `window` posted since `oldest` (conversations.history;
    https://docs.slack.dev/reference/methods/conversations.history: channels:history scope)."""
    try:
        bot_id = slack.web.auth_test().get("bot_id")
    except (SlackClientError, URLError, OSError) as exc:
        raise api_error(exc, channel_id, "auth.test") from None
    cursor: str | None = None
    while True:
        try:
            resp = slack.web.conversations_history(
                channel=channel_id,
                oldest=f"{oldest:.6f}",
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
        except (SlackClientError, URLError, OSError) as exc:
            raise api_error(exc, channel_id, "conversations.history") from None
        for message in resp.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if (
                message.get("bot_id") == bot_id
                and meta.get("event_type") == PART_EVENT
                and payload.get("window") == window
                and payload.get("target", target) == target
                and payload.get("part") == 0
            ):
                return str(message["ts"])
        cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
        if not resp.get("has_more") or not cursor:
            return None


def post_webhook(slack: SlackClients, msg: Message) -> None:
    try:
        resp = slack.webhook.send(
            text=msg.text, blocks=msg.blocks, unfurl_links=False, unfurl_media=False
        )
    except (SlackClientError, URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise DeliveryError(f"cannot reach the Slack webhook: {reason}") from None
    if resp.status_code == 200 and (resp.body or "").strip() == "ok":
        return
    raise webhook_error(resp.status_code, resp.body)


def upload_chart(
    slack: SlackClients, d: Digest, channel_id: str, thread_ts: str | None
) -> str | None:
    """Attach the theme-volume chart to the thread; returns a warning instead of failing."""
    if not chart.has_data(d.volume):
        return None
    png = chart.theme_volume_png(d.volume)
    try:
        slack.web.files_upload_v2(
            channel=channel_id,
            thread_ts=thread_ts,
            file=png,
            filename=f"theme-volume-{d.end:%Y%m%dT%H%M}.png",
            title=f"Theme volume, last {len(d.volume.window_ends)} windows of {d.window}",
            alt_txt="Items per theme per window",
        )
    except (SlackClientError, URLError, OSError) as exc:
        return f"chart not uploaded: {api_error(exc, channel_id, 'files upload')}"
    return None
