"""Post a Digest to Slack (bot token or incoming webhook), once per window and channel."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from triage.clients.slack import Target
from triage.context import Context
from triage.db import deliveries
from triage.db.deliveries import Progress
from triage.db.store import utcnow
from triage.digest import Digest
from triage.errors import DeliveryError
from triage.sinks.base import Echo, Options, Outcome
from triage.sinks.slack.blocks import Message, build_messages
from triage.sinks.slack.post import (
    find_parent,
    parts_in_thread,
    post_bot,
    post_webhook,
    upload_chart,
)

SINK = "slack"
# conversations.history takes a channel id (C…, G… private, D… direct), never a name.
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
# Looked back from the claim time for a parent whose run died: covers clock skew with Slack.
_SKEW = timedelta(minutes=2)


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
    t = ctx.slack.target()
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
        if old.pending is not None and t.kind == "bot":
            _confirm_pending(ctx, d, progress)
    elif not force and not _claimer_dead(old, claimed_at):
        return Outcome("skipped", f"another run is delivering this window to {t.name}")
    elif not force:  # a claim whose run died before Slack confirmed anything: take it over
        if old.pending == 0 and t.kind == "bot" and claimed_at:
            _adopt_parent(ctx, d, t, progress, claimed_at)
        deliveries.save(ctx.sessions, SINK, t.name, d.start, d.end, progress.dump())
        owned = progress.sent == 0
    return _post_all(ctx, d, t, messages, progress, owned)


def deliver_with(ctx: Context, d: Digest, options: Options) -> Outcome:
    """The SINKS entry: `deliver` with the options every sink is given."""
    return deliver(ctx, d, force=options.force, dry_run=options.dry_run, echo=options.echo)


def _part(d: Digest, target: str, i: int) -> dict[str, object]:
    return {"window": _window(d), "target": target, "part": i}


def _window(d: Digest) -> str:
    return f"{d.start:%Y-%m-%dT%H:%M}/{d.end:%Y-%m-%dT%H:%M}"


def _claimer_dead(old: Progress, claimed_at: datetime | None) -> bool:
    """The claim is stale, or its process ran here and is gone: safe to check and take over."""
    if claimed_at is None or utcnow() - claimed_at >= deliveries.STALE_CLAIM:
        return True
    return deliveries.claimer_gone(old.owner)


def _unchecked(part: int, where: str, exc: DeliveryError) -> DeliveryError:
    return DeliveryError(
        f"a run stopped while posting part {part}, and the {where} cannot be"
        f" checked for it ({exc}): give the Slack app the channels:history scope"
        " (groups:history for a private channel), or pass --force to post the digest again"
    )


def _adopt_parent(
    ctx: Context, d: Digest, t: Target, progress: Progress, claimed_at: datetime
) -> None:
    """A run died while the first message was in flight: find it in the channel before posting."""
    channel: str | None = t.name if _CHANNEL_ID.fullmatch(t.name) else None
    if channel is None:
        with ctx.sessions() as s:
            channel = deliveries.known_channel(s, SINK, t.name)
    if channel is None:
        raise DeliveryError(
            f"a run stopped while posting the digest's first message to {t.name}, and a channel"
            " named, not given by id, cannot be checked for it: set [slack] channel to the"
            " channel's id (C…), or pass --force to post the digest again"
        )
    oldest = (claimed_at.replace(tzinfo=UTC) - _SKEW).timestamp()
    try:
        ts = find_parent(ctx.slack, channel, oldest, _window(d), t.name)
    except DeliveryError as exc:
        raise _unchecked(1, "channel", exc) from None
    if ts is not None:
        progress.sent, progress.channel, progress.ts = 1, channel, ts


def _confirm_pending(ctx: Context, d: Digest, progress: Progress) -> None:
    """A run stopped while a part was in flight: count the parts Slack shows in the thread."""
    if progress.channel is None or progress.ts is None:
        return
    try:
        there = parts_in_thread(ctx.slack, progress.channel, progress.ts, _window(d))
    except DeliveryError as exc:
        raise _unchecked(progress.sent + 1, "thread", exc) from None
    while progress.sent in there:
        progress.sent += 1


def _post_all(
    ctx: Context, d: Digest, t: Target, messages: list[Message], progress: Progress, owned: bool
) -> Outcome:
    start, posted = progress.sent, 0
    progress.owner = deliveries.this_process()
    for i in range(start, len(messages)):
        progress.pending = i  # recorded before the part goes out
        deliveries.save(ctx.sessions, SINK, t.name, d.start, d.end, progress.dump())
        try:
            if t.kind == "bot":
                where, part = progress.channel or t.name, _part(d, t.name, i)
                channel, ts = post_bot(ctx.slack, where, messages[i], progress.ts, part)
                if progress.ts is None:
                    progress.channel, progress.ts = channel, ts
            else:
                post_webhook(ctx.slack, messages[i])
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
        progress.sent, progress.pending = i + 1, None
        deliveries.save(ctx.sessions, SINK, t.name, d.start, d.end, progress.dump())
    detail = f"posted {posted} message(s) to {t.name}"
    if start:
        detail += f" (resumed after {start})"
    if t.kind == "bot" and ctx.config.slack.upload_chart and progress.channel:
        warning = upload_chart(ctx.slack, d, progress.channel, progress.ts)
        if warning:
            detail += f"; {warning}"
    return Outcome("posted", detail, posted)
