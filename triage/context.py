"""One object that holds config, secrets, the database and every client (after triagebot).

Features receive a Context and never build clients themselves, so tests point everything at the
fakes by config alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from triage.config import Config, Secrets
from triage.db import migrate
from triage.db.engine import make_engine, session_factory

if TYPE_CHECKING:
    from triage.clients.github import GitHubClient
    from triage.clients.slack import SlackClients
    from triage.clients.stackexchange import StackExchangeClient


@dataclass
class Context:
    config: Config
    secrets: Secrets

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.config.database.url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @cached_property
    def github(self) -> GitHubClient:
        """The one GitHub client (sources and label write-back share its rate-limit state)."""
        from triage.clients.github import from_config

        token = self.secrets.github_token
        return from_config(self.config.github, token.get_secret_value() if token else None)

    @cached_property
    def stackexchange(self) -> StackExchangeClient:
        """The one Stack Exchange client, shared by every tag's source (one quota, one backoff)."""
        from triage.clients.stackexchange import StackExchangeClient

        key = self.secrets.stackexchange_key
        return StackExchangeClient(
            self.config.stackexchange, key.get_secret_value() if key else None
        )

    @cached_property
    def slack(self) -> SlackClients:
        """The Slack clients from [slack] and the Slack secrets; slack-sdk loads on first use."""
        from triage.clients.slack import SlackClients

        return SlackClients(
            self.config.slack, self.secrets.slack_bot_token, self.secrets.slack_webhook_url
        )

    def require_schema(self) -> None:
        migrate.require_current(self.engine)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
