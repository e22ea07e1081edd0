"""Post a Digest to Slack (bot token or incoming webhook), once per window and channel."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.webhook import WebhookClient

from triage.context import Context
from triage.db import deliveries
from triage.db.deliveries import Progress
from triage.db.store import utcnow
from triage.digest import Digest
from triage.errors import ConfigError, DeliveryError
from triage.sinks import chart
from triage.sinks.slack_blocks import Message, build_messages

SINK = "slack"
RATE_LIMIT_RETRIES = 3

# What to do about each Slack error; {channel} is filled in.
_HINTS = {
    "channel_not_found": "Slack channel {channel} not found: check slack.channel "
    "(a private channel needs the app invited)",
    "not_in_channel": "the Slack app is not a member of {channel}: run `/invite @<app>` there",
    "is_archived": "Slack channel {channel} is archived: set another slack.channel",
    "invalid_auth": "Slack rejected SLACK_BOT_TOKEN (invalid_auth): set a valid bot token (xoxb-…)",
    "not_authed": "Slack received no token: set SLACK_BOT_TOKEN",
    "token_revoked": "SLACK_BOT_TOKEN was revoked: reinstall the app and set the new token",
    "account_inactive": "SLACK_BOT_TOKEN belongs to a deactivated app or workspace",
    "ratelimited": f"Slack is still rate-limiting after {RATE_LIMIT_RETRIES} retries: re-run later",
    "msg_too_long": "Slack refused the message as too long (msg_too_long)",
}
_WEBHOOK_HINTS = {
    "no_service": "SLACK_WEBHOOK_URL is not a live incoming webhook (no_service): create a new one",
    "no_team": "SLACK_WEBHOOK_URL names an unknown workspace (no_team)",
    "invalid_token": "SLACK_WEBHOOK_URL was revoked (invalid_token): create a new webhook",
    "channel_not_found": "the webhook's channel no longer exists (channel_not_found)",
    "channel_is_archived": "the webhook's channel is archived (channel_is_archived)",
    "action_prohibited": "the workspace forbids posting through this webhook (action_prohibited)",
    "invalid_payload": "Slack refused the webhook payload (invalid_payload)",
}


@dataclass(frozen=True)
class Target:
    kind: Literal["bot", "webhook"]
    name: str  # the channel, or a fingerprint of the webhook (its URL is a secret)


def target(ctx: Context) -> Target:
    if ctx.secrets.slack_bot_token:
        return Target("bot", ctx.config.slack.channel)
    if ctx.secrets.slack_webhook_url:
        url = ctx.secrets.slack_webhook_url.get_secret_value()
        return Target("webhook", "webhook:" + hashlib.sha256(url.encode()).hexdigest()[:12])
    raise ConfigError(
        "Slack is not configured: set SLACK_BOT_TOKEN (and slack.channel) or SLACK_WEBHOOK_URL"
    )


def configured(ctx: Context) -> bool:
    return bool(ctx.secrets.slack_bot_token or ctx.secrets.slack_webhook_url)


def _retry_handlers() -> list[RetryHandler]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ServerErrorRetryHandler(max_retry_count=2),
    ]


def web_client(ctx: Context) -> WebClient:
    """The bot client, built once per Context."""
    if "slack_web" not in ctx._cache:
        token = ctx.secrets.slack_bot_token
        ctx._cache["slack_web"] = WebClient(
            token=token.get_secret_value() if token else None,
            base_url=ctx.config.slack.base_url,
            timeout=max(1, round(ctx.config.slack.timeout)),
            retry_handlers=_retry_handlers(),
        )
    client: WebClient = ctx._cache["slack_web"]
    return client


def webhook_client(ctx: Context) -> WebhookClient:
    if "slack_webhook" not in ctx._cache:
        url = ctx.secrets.slack_webhook_url
        ctx._cache["slack_webhook"] = WebhookClient(
            url=url.get_secret_value() if url else "",
            timeout=max(1, round(ctx.config.slack.timeout)),
            retry_handlers=_retry_handlers(),
        )
    client: WebhookClient = ctx._cache["slack_webhook"]
    return client


def api_error(exc: SlackClientError | OSError, channel: str, method: str) -> DeliveryError:
    """One line naming what to fix; never the token."""
    if isinstance(exc, SlackApiError):
        code = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
        if code == "missing_scope":
            needed = exc.response.get("needed") or "chat:write"
            return DeliveryError(
                f"the Slack token lacks the {needed} scope: add it to the app and reinstall"
            )
        hint = _HINTS.get(code)
        return DeliveryError(hint.format(channel=channel) if hint else f"Slack {method}: {code}")
    reason = getattr(exc, "reason", None) or exc
    return DeliveryError(f"cannot reach Slack for {method}: {reason}")


def _post_bot(ctx: Context, channel: str, msg: Message, thread_ts: str | None) -> tuple[str, str]:
    try:
        resp = web_client(ctx).chat_postMessage(
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


def _post_webhook(ctx: Context, msg: Message) -> None:
    try:
        resp = webhook_client(ctx).send(
            text=msg.text, blocks=msg.blocks, unfurl_links=False, unfurl_media=False
        )
    except (SlackClientError, URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise DeliveryError(f"cannot reach the Slack webhook: {reason}") from None
    if resp.status_code == 200 and (resp.body or "").strip() == "ok":
        return
    code = (resp.body or "").strip().split("\n")[0][:100] or f"HTTP {resp.status_code}"
    if resp.status_code == 429:
        raise DeliveryError(_HINTS["ratelimited"])
    raise DeliveryError(_WEBHOOK_HINTS.get(code, f"Slack webhook refused the message: {code}"))


def upload_chart(ctx: Context, d: Digest, channel_id: str, thread_ts: str | None) -> str | None:
    """Attach the theme-volume chart to the thread; returns a warning instead of failing."""
    if not chart.has_data(d.volume):
        return None
    png = chart.theme_volume_png(d.volume)
    try:
        web_client(ctx).files_upload_v2(
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


@dataclass
class Outcome:
    status: Literal["posted", "skipped", "dry-run"]
    detail: str
    posted: int = 0


Echo = Callable[[str], None]


def _dry_run(t: Target, messages: list[Message], note: str, echo: Echo) -> Outcome:
    for i, msg in enumerate(messages):
        payload = {"channel": t.name if t.kind == "bot" else "(webhook)", "text": msg.text}
        if i and t.kind == "bot":
            payload["thread_ts"] = "<parent ts>"
        echo(json.dumps({**payload, "blocks": msg.blocks}, ensure_ascii=False, indent=1))
    return Outcome("dry-run", f"would post {len(messages)} message(s) to {t.name}{note}")


def deliver(
    ctx: Context, d: Digest, *, force: bool = False, dry_run: bool = False, echo: Echo = print
) -> Outcome:
    """Post the digest unless this window already went to this target (`force` re-posts)."""
    t = target(ctx)
    messages = build_messages(d, threaded=t.kind == "bot")
    with ctx.sessions() as s:
        row = deliveries.find(s, SINK, t.name, d.start, d.end)
        old = Progress.load(row.ref) if row else None
        claimed_at = row.delivered_at if row else None
    if old and old.complete and not force:
        note = f" (already posted to {t.name} at {claimed_at:%Y-%m-%d %H:%M} UTC)"
        if dry_run:
            return _dry_run(t, messages, note + "; --force to post again", echo)
        return Outcome(
            "skipped", f"digest for this window already posted to {t.name}; --force posts it again"
        )
    if dry_run:
        return _dry_run(t, messages, "", echo)
    progress = Progress(total=len(messages))
    owned = False  # this run holds an empty claim: drop it if the first post fails
    if old is None:
        if not deliveries.claim(ctx.sessions, SINK, t.name, d.start, d.end):
            return Outcome("skipped", f"another run is delivering this window to {t.name}")
        owned = True
    elif not force and old.sent > 0:  # a run stopped half-way: continue its thread
        progress = Progress(sent=old.sent, total=len(messages), channel=old.channel, ts=old.ts)
    elif not force and claimed_at and utcnow() - claimed_at < deliveries.STALE_CLAIM:
        return Outcome("skipped", f"another run is delivering this window to {t.name}")
    elif not force:  # a claim whose run died before posting anything: take it over
        deliveries.save(ctx.sessions, SINK, t.name, d.start, d.end, progress.dump())
        owned = True
    return _post_all(ctx, d, t, messages, progress, owned)


def _post_all(
    ctx: Context, d: Digest, t: Target, messages: list[Message], progress: Progress, owned: bool
) -> Outcome:
    start, posted = progress.sent, 0
    for i in range(start, len(messages)):
        try:
            if t.kind == "bot":
                channel, ts = _post_bot(ctx, progress.channel or t.name, messages[i], progress.ts)
                if progress.ts is None:
                    progress.channel, progress.ts = channel, ts
            else:
                _post_webhook(ctx, messages[i])
        except DeliveryError as exc:
            if progress.sent == 0 and owned:
                deliveries.release(ctx.sessions, SINK, t.name, d.start, d.end)
            elif progress.sent:
                raise DeliveryError(
                    f"{exc} (posted {progress.sent} of {len(messages)} messages; "
                    "re-run `triage digest` to post the rest)"
                ) from None
            raise
        posted += 1
        progress.sent = i + 1
        deliveries.save(ctx.sessions, SINK, t.name, d.start, d.end, progress.dump())
    detail = f"posted {posted} message(s) to {t.name}"
    if start:
        detail += f" (resumed after {start})"
    if t.kind == "bot" and ctx.config.slack.upload_chart and progress.channel:
        warning = upload_chart(ctx, d, progress.channel, progress.ts)
        if warning:
            detail += f"; {warning}"
    return Outcome("posted", detail, posted)


def check(ctx: Context) -> str:
    """`triage doctor`: the bot token works (auth.test), or a webhook is configured."""
    if ctx.secrets.slack_bot_token:
        try:
            resp = web_client(ctx).auth_test()
        except (SlackClientError, URLError, OSError) as exc:
            raise api_error(exc, ctx.config.slack.channel, "auth.test") from None
        return (
            f"bot token valid for workspace {resp.get('team')} as {resp.get('user')};"
            f" posting to {ctx.config.slack.channel}"
        )
    if ctx.secrets.slack_webhook_url:
        return "incoming webhook configured (SLACK_WEBHOOK_URL); not called, it would post"
    return "not configured: digests go to files (set SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL)"
