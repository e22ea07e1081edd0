"""`triage doctor` for Slack: the bot token works (auth.test), or a webhook is configured."""

from __future__ import annotations

from urllib.error import URLError

from slack_sdk.errors import SlackClientError

from triage.context import Context
from triage.sinks.slack.errors import api_error


def check(ctx: Context) -> str:
    """A webhook is not called: any call to it would post a message."""
    if not ctx.slack.configured:
        return "not configured: digests go to files (set SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL)"
    if ctx.slack.target().kind == "webhook":
        return "incoming webhook configured (SLACK_WEBHOOK_URL); not called, it would post"
    try:
        resp = ctx.slack.web.auth_test()
    except (SlackClientError, URLError, OSError) as exc:
        raise api_error(exc, ctx.config.slack.channel, "auth.test") from None
    return (
        f"bot token valid for workspace {resp.get('team')} as {resp.get('user')};"
        f" posting to {ctx.config.slack.channel}"
    )
