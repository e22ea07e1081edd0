"""One Slack message (or the chart) through the context's clients, failures as one line."""

from __future__ import annotations

from urllib.error import URLError

from slack_sdk.errors import SlackClientError

from triage.clients.slack import SlackClients
from triage.digest import Digest
from triage.errors import DeliveryError
from triage.sinks import chart
from triage.sinks.slack.blocks import Message
from triage.sinks.slack.errors import api_error, webhook_error


def post_bot(
    slack: SlackClients, channel: str, msg: Message, thread_ts: str | None
) -> tuple[str, str]:
    """Post as the bot; returns the channel id and message ts a thread continues from."""
    try:
        resp = slack.web.chat_postMessage(
            channel=channel,
            text=msg.text,
            blocks=msg.blocks,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )
    except (SlackClientError, URLError, OSError) as exc:
        raise api_error(exc, channel, "chat.postMessage") from None
    return str(resp.get("channel") or channel), str(resp.get("ts") or "")


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
