"""The Slack transports (bot WebClient, incoming webhook), built once from config and secrets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.webhook import WebhookClient

from triage.config import SlackConfig
from triage.errors import ConfigError

RATE_LIMIT_RETRIES = 3


@dataclass(frozen=True)
class Target:
    kind: Literal["bot", "webhook"]
    name: str  # the channel, or a fingerprint of the webhook (its URL is a secret)


def _retry_handlers() -> list[RetryHandler]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ServerErrorRetryHandler(max_retry_count=2),
    ]


class SlackClients:
    """What the Slack sink posts through; a client is built on first use, then reused."""

    def __init__(
        self, config: SlackConfig, bot_token: SecretStr | None, webhook_url: SecretStr | None
    ) -> None:
        self.config = config
        self._bot_token = bot_token
        self._webhook_url = webhook_url

    @property
    def configured(self) -> bool:
        return bool(self._bot_token or self._webhook_url)

    def target(self) -> Target:
        """The bot token's channel first, else the webhook; neither is a config error."""
        if self._bot_token:
            return Target("bot", self.config.channel)
        if self._webhook_url:
            url = self._webhook_url.get_secret_value()
            return Target("webhook", "webhook:" + hashlib.sha256(url.encode()).hexdigest()[:12])
        raise ConfigError(
            "Slack is not configured: set SLACK_BOT_TOKEN (and slack.channel) or SLACK_WEBHOOK_URL"
        )

    @cached_property
    def web(self) -> WebClient:
        token = self._bot_token
        return WebClient(
            token=token.get_secret_value() if token else None,
            base_url=self.config.base_url,
            timeout=max(1, round(self.config.timeout)),
            retry_handlers=_retry_handlers(),
        )

    @cached_property
    def webhook(self) -> WebhookClient:
        url = self._webhook_url
        return WebhookClient(
            url=url.get_secret_value() if url else "",
            timeout=max(1, round(self.config.timeout)),
            retry_handlers=_retry_handlers(),
        )
