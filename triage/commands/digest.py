"""`triage digest`: build the digest of a window and deliver it to Slack, a file or stdout."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from triage import sinks
from triage.commands.common import runtime
from triage.context import Context
from triage.digest import Digest, build_covering, build_digest
from triage.errors import ConfigError
from triage.windows import Window, parse_instant

# `--to` offers what the registry holds; `auto` is resolved by sinks.destination.
Destination = StrEnum("Destination", [(n, n) for n in ("auto", *sinks.SINKS)])  # type: ignore[misc]


def build(ctx: Context, window: str | None, until: str | None, dest: str | None = None) -> Digest:
    """An explicit --window or --until is that window; the default also covers what was stored
    since the previous digest to `dest` (all of it before the first one)."""
    spec = window or ctx.config.digest.window
    win = Window.ending(spec, parse_instant(until) if until else None)
    with ctx.sessions() as session:
        if window is None and until is None:
            return build_covering(session, ctx.config, win, None if dest == "stdout" else dest)
        return build_digest(session, ctx.config, win)


def digest(
    ctx: typer.Context,
    window: Annotated[
        str | None, typer.Option("--window", help="Length of the window, e.g. 12h, 1d, 7d")
    ] = None,
    to: Annotated[
        Destination | None,
        typer.Option("--to", help="Where to deliver (default: digest.to; auto = Slack if set up)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="File path for --to markdown/html")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be sent; record nothing")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Post again a window already delivered to Slack")
    ] = False,
    until: Annotated[
        str | None,
        typer.Option("--until", help="End of the window (ISO 8601, UTC); default now"),
    ] = None,
) -> None:
    """Build the digest of the last window and deliver it (once per window and target)."""
    tctx = runtime(ctx).context()
    dest = sinks.destination(tctx, to.value if to else None)
    if out is not None and dest not in ("markdown", "html"):
        raise ConfigError("--out applies to --to markdown or --to html")
    d = build(tctx, window, until, dest)
    outcome = sinks.deliver(tctx, d, dest, out, dry_run=dry_run, force=force, echo=typer.echo)
    if outcome.detail:
        typer.echo(outcome.detail)


def register(app: typer.Typer) -> None:
    app.command("digest")(digest)
