"""What every command shares: the lazily built Context and the rich console."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console

from triage import logs, providers
from triage.config import Config, Secrets, load_config
from triage.context import Context

# Not a terminal (a pipe, a file, CI): as wide as the text, so tables are never cut at 80 columns.
NOT_A_TERMINAL_WIDTH = 10_000
console = Console(stderr=False)
if not console.is_terminal:
    console = Console(stderr=False, width=NOT_A_TERMINAL_WIDTH)
# One-line messages stay one line (no wrapping at the terminal width).
err_console = Console(stderr=True, soft_wrap=True)


@dataclass
class Runtime:
    config_path: Path | None = None
    debug: bool = False
    _ctx: Context | None = field(default=None, repr=False)

    def config(self) -> Config:
        return self.context(check_schema=False).config

    def context(self, check_schema: bool = True, create: bool = False) -> Context:
        """The Context; only `create=True` (init, db upgrade) may make a new database."""
        if self._ctx is None:
            config = load_config(self.config_path)
            secrets = Secrets.from_env()
            level = "DEBUG" if self.debug else config.logging.level
            logs.configure(level, config.logging.format, secrets.values())
            note = providers.fallback(config, secrets)  # one rule for a missing key, everywhere
            self._ctx = Context(config=config, secrets=secrets, fallback=note, create_db=create)
        if check_schema:
            self._ctx.require_schema()
        return self._ctx


def runtime(ctx: typer.Context) -> Runtime:
    obj = ctx.find_object(Runtime)
    assert obj is not None
    return obj
