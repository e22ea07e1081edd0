"""Post a Digest to Slack (bot token or incoming webhook), once per window and channel."""

from __future__ import annotations

import json

from triage.clients.slack import Target
from triage.context import Context
from triage.db import deliveries
from triage.db.deliveries import Progress
from triage.db.store import utcnow
from triage.digest import Digest
from triage.errors import DeliveryError
from triage.sinks.base import Echo, Options, Outcome
from triage.sinks.slack.blocks import Message, build_messages
from triage.sinks.slack.post import parts_in_thread, post_bot, post_webhook, upload_chart

SINK = "slack"


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
    elif not force and claimed_at and utcnow() - claimed_at < deliveries.STALE_CLAIM:
        return Outcome("skipped", f"another run is delivering this window to {t.name}")
    elif not force:  # a claim whose run died before posting anything: take it over
        deliveries.save(ctx.sessions, SINK, t.name, d.start, d.end, progress.dump())
        owned = True
    return _post_all(ctx, d, t, messages, progress, owned)


def deliver_with(ctx: Context, d: Digest, options: Options) -> Outcome:
    """The SINKS entry: `deliver` with the options every sink is given."""
    return deliver(ctx, d, force=options.force, dry_run=options.dry_run, echo=options.echo)


def _part(d: Digest, i: int) -> dict[str, object]:
    return {"window": _window(d), "part": i}


def _window(d: Digest) -> str:
    return f"{d.start:%Y-%m-%dT%H:%M}/{d.end:%Y-%m-%dT%H:%M}"


def _confirm_pending(ctx: Context, d: Digest, progress: Progress) -> None:
    """A run stopped while a part was in flight: count the parts Slack shows in the thread."""
    if progress.channel is None or progress.ts is None:
        return
    try:
        there = parts_in_thread(ctx.slack, progress.channel, progress.ts, _window(d))
    except DeliveryError as exc:
        raise DeliveryError(
            f"a run stopped while posting part {progress.sent + 1}, and the thread cannot be"
            f" checked for it ({exc}): give the Slack app the channels:history scope"
            " (groups:history for a private channel), or pass --force to post the digest again"
        ) from None
    while progress.sent in there:
        progress.sent += 1


def _post_all(
    ctx: Context, d: Digest, t: Target, messages: list[Message], progress: Progress, owned: bool
) -> Outcome:
    start, posted = progress.sent, 0
    for i in range(start, len(messages)):
        progress.pending = i  # recorded before the part goes out
        deliveries.save(ctx.sessions, SINK, t.name, d.start, d.end, progress.dump())
        try:
            if t.kind == "bot":
                where = progress.channel or t.name
                channel, ts = post_bot(ctx.slack, where, messages[i], progress.ts, _part(d, i))
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
