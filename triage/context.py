"""One object that holds config, secrets, the database and every client (after triagebot).

Features receive a Context and never build clients themselves, so tests point everything at the
fakes by config alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from triage.config import Config, Secrets
from triage.db import migrate
from triage.db.engine import make_engine, session_factory

if TYPE_CHECKING:
    from triage.clients.slack import SlackClients


@dataclass
class Context:
    config: Config
    secrets: Secrets
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.config.database.url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

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
