"""backfill and sync: pull items from the configured sources into the database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from triage import ingest
from triage.commands.common import console, err_console, runtime
from triage.commands.failures import explain
from triage.context import Context
from triage.errors import ConfigError, Interrupted, TriageError
from triage.ingest import RunStats
from triage.sources import github_sources, stackexchange_sources
from triage.sources.base import Source, to_utc

_REPO_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
backfill_app = typer.Typer(help="One-off, resumable import of history.", no_args_is_help=True)

SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Only items created (SO) or updated (GitHub) from this date (YYYY-MM-DD, UTC)",
    ),
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


def parse_since(value: str | None) -> datetime | None:
    """`--since` as naive UTC: a date, or an ISO 8601 time (with Z or an offset)."""
    if value is None:
        return None
    try:
        return to_utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise ConfigError(
            f"--since {value!r} is not a date: use YYYY-MM-DD or an ISO 8601 time"
            " such as 2024-01-31T12:00:00Z"
        ) from None


def _summary(stats: RunStats) -> str:
    state = "complete" if stats.done else "stopped early (re-run to continue)"
    if stats.not_modified:
        state = "complete, nothing changed (304 Not Modified)"
    return (
        f"{stats.source}: {stats.items} items ({stats.new} new, {stats.updated} updated,"
        f" {stats.unchanged} unchanged, {stats.skipped} skipped) in {stats.requests} requests,"
        f" {stats.seconds:.1f}s, cursor {stats.cursor or '-'}; {state}"
    )


def _run(
    tctx: Context, source: Source, since: datetime | None, limit: int | None, backfill: bool
) -> RunStats:
    if backfill:
        name = ingest.backfill_cursor_name(source, since)
    else:
        name = ingest.sync_cursor_name(source)
        since = ingest.first_sync_start(tctx, source, name)
    last: list[RunStats] = []
    with progress_bar(source.name, source.total_hint()) as hook:

        def on_page(stats: RunStats) -> None:
            hook(stats)
            last[:] = [stats]

        try:
            stats = ingest.run(
                tctx.sessions,
                source,
                name,
                since=since,
                limit=limit,
                on_page=on_page,
                advance_sync=backfill,
            )
        except KeyboardInterrupt:
            saved = (
                f"{last[0].items} items saved, cursor {last[0].cursor}" if last else "nothing new"
            )
            raise Interrupted(
                f"interrupted: {source.name}: {saved}; run the same command again to continue"
            ) from None
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
    owner, _, name = repo.partition("/")
    if not _REPO_NAME.fullmatch(owner) or not _REPO_NAME.fullmatch(name):
        raise ConfigError(
            f"expected OWNER/REPO, got {repo!r} (letters, digits, '.', '-' and '_' only)"
        )
    start = parse_since(since)
    tctx = runtime(ctx).context()
    for source in github_sources(tctx, [repo]):
        _run(tctx, source, start, limit, backfill=True)


@backfill_app.command("stackoverflow")
def backfill_stackoverflow(
    ctx: typer.Context,
    tag: Annotated[str, typer.Argument(help="Tag to import")],
    site: Annotated[str | None, typer.Option("--site", help="Stack Exchange site")] = None,
    since: SinceOpt = None,
    limit: LimitOpt = None,
) -> None:
    """Import a Stack Exchange tag's questions; resumable."""
    if not tag.strip():
        raise ConfigError("expected a tag, e.g. `triage backfill stackoverflow google-gemini`")
    start = parse_since(since)
    tctx = runtime(ctx).context()
    from triage.sources.stackexchange import tag_name

    tag = tag_name(tag)  # before anything else: "[google-gemini]" is a usage error
    site = site or tctx.config.stackexchange.site
    from triage.sources.stackexchange import check_tag, site_name, tag_name

    # A malformed or unknown tag is one line and exit 2 before anything is stored (one request).
    check_tag(tctx.stackexchange, site_name(site), tag_name(tag))
    for source in stackexchange_sources(tctx, [tag], site):
        _run(tctx, source, start, limit, backfill=True)


# `--source` words that pick one kind of source; anything else matches part of a source name.
KINDS = {
    "github": "github",
    "stackexchange": "stackexchange",
    "stackoverflow": "stackexchange",
    "so": "stackexchange",
}


def _picks(only: str | None, kind: str, name: str) -> bool:
    """Whether `--source ONLY` selects this source (or, for `org/*`, may select some of it)."""
    if not only:
        return True
    if only in KINDS:
        return KINDS[only] == kind
    return only in name or name.endswith("/*")


def sync_sources(tctx: Context, only: str | None = None) -> list[RunStats]:
    """One pass over the configured sources (or those `only` picks); a failing one stops none."""
    results: list[RunStats] = []
    failures: list[tuple[str, TriageError]] = []
    seen: set[str] = set()  # `org/*` and `org/repo` both configured: sync it once
    for kind, name, build in ingest.source_builders(tctx):
        if not _picks(only, kind, name):
            continue
        try:
            sources = build()
        except TriageError as exc:
            failures.append((name, exc))
            continue
        for source in sources:
            if source.name in seen or not _picks(only, kind, source.name):
                continue
            seen.add(source.name)
            try:
                results.append(_run(tctx, source, None, None, backfill=False))
            except Interrupted:
                raise
            except TriageError as exc:
                failures.append((source.name, exc))
            except Exception as exc:  # one failing source never stops the others
                failures.append((source.name, _unexpected(tctx, exc)))
    if failures:
        raise _failed(failures)
    if not seen:
        raise ConfigError(
            "no sources to sync: set [github] repos or [stackexchange] tags"
            + (f" matching {only!r}" if only else "")
        )
    return results


def _unexpected(tctx: Context, exc: Exception) -> TriageError:
    known = explain(exc, tctx.config.database.url)
    if known is not None:
        return known
    first = (str(exc).splitlines() or [""])[0][:200]
    return TriageError(f"unexpected {type(exc).__name__}: {first} (re-run with --debug)")


def _failed(failures: list[tuple[str, TriageError]]) -> TriageError:
    """One error for the run: the failure itself, or every failing source on one line."""
    if len(failures) == 1:
        return failures[0][1]
    error = TriageError(
        f"{len(failures)} sources failed (the others were synced): "
        + "; ".join(f"{name}: {exc}" for name, exc in failures)
    )
    error.exit_code = max(exc.exit_code for _, exc in failures)
    return error


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
