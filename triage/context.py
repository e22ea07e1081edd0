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

from triage import providers
from triage.config import Config, Secrets
from triage.db import migrate, store
from triage.db.engine import make_engine, session_factory, transaction
from triage.db.llm_calls import Budget
from triage.logs import get_logger
from triage.providers.base import Classifier, end_run

if TYPE_CHECKING:
    from triage.clients.github import GitHubClient
    from triage.clients.slack import SlackClients
    from triage.clients.stackexchange import StackExchangeClient


@dataclass
class Context:
    config: Config
    secrets: Secrets
    _providers: dict[str, Classifier] = field(default_factory=dict, repr=False)
    # Set where the missing-key rule replaced [llm] provider (providers.fallback); said once.
    fallback: str | None = None
    create_db: bool = True  # the CLI passes False except for `init` and `db upgrade`
    _fallback_said: bool = field(default=False, repr=False)

    def say_fallback(self) -> None:
        """Log the missing-key fallback the first time something depends on it."""
        if self.fallback and not self._fallback_said:
            self._fallback_said = True
            get_logger("triage").warning(self.fallback)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.config.database.url, create=self.create_db)

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

    def listing_state(self, name: str) -> dict[str, Any]:
        """A source's saved state between runs, in its row of `cursors` (sources.base)."""
        with self.sessions() as session:
            row = store.get_cursor(session, name)
            return dict(row.state or {}) if row else {}

    def save_listing_state(self, name: str, state: dict[str, Any]) -> None:
        with transaction(self.sessions) as session:
            store.set_cursor(session, name, None, state)

    def require_schema(self) -> None:
        migrate.require_current(self.engine)

    def provider(self, name: str | None = None) -> Classifier:
        """The named provider (default: [llm] provider), built once per Context.

        An unknown name is a one-line ConfigError naming the known ones (PROVIDERS).
        """
        chosen = name or self.config.llm.provider
        if chosen == self.config.llm.provider:
            self.say_fallback()
        if chosen not in self._providers:
            self._providers[chosen] = providers.build(self, chosen)
        return self._providers[chosen]

    def budget(self) -> Budget:
        """Today's token budget as llm_calls records it; a stage loads it once per run."""
        with self.sessions() as session:
            return Budget.load(session, self.config.llm)

    def close(self) -> None:
        for built in self._providers.values():
            end_run(built)
        self._providers.clear()
        if "engine" in self.__dict__:
            self.engine.dispose()
