"""backfill and sync: pull items from the configured sources into the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from triage import ingest
from triage.commands.common import console, err_console, runtime
from triage.context import Context
from triage.errors import ConfigError
from triage.ingest import RunStats
from triage.sources.base import Source, to_utc

backfill_app = typer.Typer(help="One-off, resumable import of history.", no_args_is_help=True)

SinceOpt = Annotated[
    datetime | None,
    typer.Option("--since", help="Only items created (SO) or updated (GitHub) from this date"),
]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Stop after about N items")]


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[ingest.ProgressHook]:
    """A rich progress bar showing items, items/s and the API quota left."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} items"),
        TextColumn("{task.fields[rate]:.0f}/s"),
        TextColumn("quota {task.fields[quota]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
    task = progress.add_task(label, total=total, rate=0.0, quota="-")

    def hook(stats: RunStats) -> None:
        quota = "-" if stats.quota_remaining is None else str(stats.quota_remaining)
        progress.update(task, completed=stats.items, rate=stats.items_per_second, quota=quota)

    with progress:
        yield hook


def _summary(stats: RunStats) -> str:
    state = "complete" if stats.done else "stopped early (re-run to continue)"
    return (
        f"{stats.source}: {stats.items} items ({stats.new} new, {stats.updated} updated,"
        f" {stats.skipped} skipped) in {stats.requests} requests, {stats.seconds:.1f}s,"
        f" cursor {stats.cursor or '-'}; {state}"
    )


def _run(
    tctx: Context, source: Source, since: datetime | None, limit: int | None, backfill: bool
) -> RunStats:
    if backfill:
        name = ingest.backfill_cursor_name(source, since)
    else:
        name = ingest.sync_cursor_name(source)
    with progress_bar(source.name, source.total_hint()) as hook:
        stats = ingest.run(
            tctx.sessions,
            source,
            name,
            since=since,
            limit=limit,
            on_page=hook,
            advance_sync=backfill,
        )
    console.print(_summary(stats), soft_wrap=True, highlight=False)
    return stats


@backfill_app.command("github")
def backfill_github(
    ctx: typer.Context,
    repo: Annotated[str, typer.Argument(help="OWNER/REPO")],
    since: SinceOpt = None,
    limit: LimitOpt = None,
) -> None:
    """Import a repository's issues (oldest change first); resumable."""
    from triage.sources import github

    if repo.count("/") != 1 or "*" in repo:
        raise ConfigError(f"expected OWNER/REPO, got {repo!r}")
    tctx = runtime(ctx).context()
    for source in github.make_sources(tctx, [repo]):
        _run(tctx, source, since and to_utc(since), limit, backfill=True)


@backfill_app.command("stackoverflow")
def backfill_stackoverflow(
    ctx: typer.Context,
    tag: Annotated[str, typer.Argument(help="Tag to import")],
    site: Annotated[str | None, typer.Option("--site", help="Stack Exchange site")] = None,
    since: SinceOpt = None,
    limit: LimitOpt = None,
) -> None:
    """Import a Stack Exchange tag's questions; resumable."""
    from triage.sources import stackexchange

    tctx = runtime(ctx).context()
    site = site or tctx.config.stackexchange.site
    for source in stackexchange.make_sources(tctx, [tag], site):
        _run(tctx, source, since and to_utc(since), limit, backfill=True)


def sync_sources(tctx: Context, only: str | None = None) -> list[RunStats]:
    """One incremental pass over every configured source (or those whose name contains `only`)."""
    from triage.sources import github, stackexchange

    cfg = tctx.config
    sources: list[Source] = []
    if cfg.github.repos and (only is None or only.startswith("github") or "/" in only):
        sources += github.make_sources(tctx, cfg.github.repos)
    if cfg.stackexchange.tags and (only is None or only.startswith(("stack", "so"))):
        sources += stackexchange.make_sources(tctx, cfg.stackexchange.tags, cfg.stackexchange.site)
    if only and only not in ("github", "stackexchange", "stackoverflow", "so"):
        sources = [s for s in sources if only in s.name]
    if not sources:
        raise ConfigError(
            "no sources to sync: set [github] repos or [stackexchange] tags"
            + (f" matching {only!r}" if only else "")
        )
    return [_run(tctx, s, None, None, backfill=False) for s in sources]


def sync(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Option("--source", help="github, stackexchange, or part of a source name")
    ] = None,
) -> None:
    """One incremental pass over the configured sources."""
    sync_sources(runtime(ctx).context(), source)


def register(app: typer.Typer) -> None:
    app.add_typer(backfill_app, name="backfill")
    app.command()(sync)
