"""Slack's error codes as one line each that names what to fix, never the token."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError, SlackClientError

from triage.clients.slack import RATE_LIMIT_RETRIES
from triage.errors import DeliveryError

# What to do about each Slack error; {channel} is filled in.
HINTS = {
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
WEBHOOK_HINTS = {
    "no_service": "SLACK_WEBHOOK_URL is not a live incoming webhook (no_service): create a new one",
    "no_team": "SLACK_WEBHOOK_URL names an unknown workspace (no_team)",
    "invalid_token": "SLACK_WEBHOOK_URL was revoked (invalid_token): create a new webhook",
    "channel_not_found": "the webhook's channel no longer exists (channel_not_found)",
    "channel_is_archived": "the webhook's channel is archived (channel_is_archived)",
    "action_prohibited": "the workspace forbids posting through this webhook (action_prohibited)",
    "invalid_payload": "Slack refused the webhook payload (invalid_payload)",
}


def api_error(exc: SlackClientError | OSError, channel: str, method: str) -> DeliveryError:
    """One line naming what to fix; never the token."""
    if isinstance(exc, SlackApiError):
        code = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
        if code == "missing_scope":
            needed = exc.response.get("needed") or "chat:write"
            return DeliveryError(
                f"the Slack token lacks the {needed} scope: add it to the app and reinstall"
            )
        hint = HINTS.get(code)
        return DeliveryError(hint.format(channel=channel) if hint else f"Slack {method}: {code}")
    reason = getattr(exc, "reason", None) or exc
    return DeliveryError(f"cannot reach Slack for {method}: {reason}")


def webhook_error(status: int, body: str | None) -> DeliveryError:
    """A webhook answers with a plain-text code instead of JSON."""
    code = (body or "").strip().split("\n")[0][:100] or f"HTTP {status}"
    if status == 429:
        return DeliveryError(HINTS["ratelimited"])
    return DeliveryError(WEBHOOK_HINTS.get(code, f"Slack webhook refused the message: {code}"))
