"""`triage digest`: build the digest of a window and deliver it to Slack, a file or stdout."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from triage.commands.common import runtime
from triage.context import Context
from triage.db import deliveries
from triage.digest import Digest, build_digest
from triage.errors import ConfigError
from triage.sinks import files, slack
from triage.windows import Window, parse_instant


class Destination(StrEnum):
    auto = "auto"
    slack = "slack"
    markdown = "markdown"
    html = "html"
    stdout = "stdout"


def destination(ctx: Context, requested: str | None) -> str:
    """`auto`: Slack when a bot token or webhook is set, else a Markdown file."""
    choice = requested or ctx.config.digest.to
    if choice == "auto":
        return "slack" if slack.configured(ctx) else "markdown"
    return choice


def build(ctx: Context, window: str | None, until: str | None) -> Digest:
    spec = window or ctx.config.digest.window
    win = Window.ending(spec, parse_instant(until) if until else None)
    with ctx.sessions() as session:
        return build_digest(session, ctx.config, win)


def deliver_file(ctx: Context, d: Digest, fmt: str, out: Path | None, dry_run: bool) -> str:
    """Write (or overwrite) the file; a file is a view of the data, so rewriting it is harmless."""
    path = out or files.default_path(ctx.config.digest.out_dir, d, fmt)
    content = files.render_markdown(d) if fmt == "markdown" else files.render_html(d)
    if dry_run:
        return f"would write {path} ({len(content.encode()):,} bytes)"
    files.write_file(path, content)
    deliveries.save(ctx.sessions, fmt, str(path.resolve()), d.start, d.end, str(path))
    return f"wrote {path}"


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
    dest = destination(tctx, to.value if to else None)
    if out is not None and dest not in ("markdown", "html"):
        raise ConfigError("--out applies to --to markdown or --to html")
    d = build(tctx, window, until)
    if dest == "stdout":
        sys.stdout.write(files.render_markdown(d))
        return
    if dest in ("markdown", "html"):
        typer.echo(deliver_file(tctx, d, dest, out, dry_run))
        return
    outcome = slack.deliver(tctx, d, force=force, dry_run=dry_run, echo=typer.echo)
    typer.echo(outcome.detail)


def register(app: typer.Typer) -> None:
    app.command("digest")(digest)
