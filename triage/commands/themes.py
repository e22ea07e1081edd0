"""themes and duplicates: group reports of one problem across sources, link likely duplicates."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from jobs import runs
from triage.analysis.themes import run as th
from triage.commands.common import console, err_console, runtime
from triage.commands.recorded import recorded
from triage.context import Context
from triage.db import store
from triage.db.schema import Theme
from triage.digest_span import active_since, stored
from triage.windows import parse_window

ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", help="gemini | local | openai (default: [llm] provider)"),
]


STAGE_NAMES = {
    "vectors": "reading new text",
    "neighbours": "looking for neighbours",
    "judging": "judging pairs",
    "themes": "theming",
}


@contextmanager
def stages(job: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per stage of a long run (on stderr; gone when the run ends)."""
    progress = Progress(
        TextColumn(f"[bold]{job}[/]: {{task.description}}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(STAGE_NAMES.get(stage, stage), total=total)
        progress.update(tasks[stage], completed=done, total=total)

    with progress:
        yield update


def themes(
    ctx: typer.Context,
    window: Annotated[
        str | None,
        typer.Option(
            "--window", help="Theme items active in this window, e.g. 7d (default: [themes] window)"
        ),
    ] = None,
    provider: ProviderOpt = None,
) -> None:
    """Group new and changed items into themes; ids stay stable from run to run."""
    tctx = runtime(ctx).context()
    spec = window or tctx.config.themes.window
    length = parse_window(spec)
    since = store.utcnow() - length
    tctx.provider(provider)  # an unknown provider is a usage error, not a failed run
    with recorded(tctx, "themes") as rec, stages("themes") as progress:
        result = th.run_for_context(tctx, since, provider, progress)
        rec.counts = runs.counts_of(result)
        if result.failed:
            rec.failed = f"{result.failed} items not themed (a model call failed)"
    if result.pending == 0:
        with tctx.sessions() as session:
            empty = not active_since(session, since)
            hint = f"; {stored(session).hint(store.utcnow(), 'triage themes')}" if empty else ""
        console.print(f"themes: nothing new to theme in {spec}{hint}")
    elif result.skipped:
        console.print(f"themes: nothing new in {spec}; {result.left_over} items still fit no theme")
    else:
        console.print(
            f"themes: {result.assigned} of {result.pending} items themed"
            f" ({result.joined_existing} joined existing themes, {result.new_themes} new themes,"
            f" {result.merged} merged), {result.left_over} fit no theme yet"
            + (
                f"; {result.calls} model calls, {result.input_tokens} prompt tokens"
                if result.calls
                else ""
            )
            + (
                f"; {result.rejected} answers named unknown themes and were ignored"
                if result.rejected
                else ""
            )
        )
    _print_themes(tctx, since, store.utcnow() + timedelta(seconds=1))
    if result.failed:
        console.print(f"themes: {result.failed} items not themed (a model call failed); re-run")
        raise typer.Exit(1)


def _print_themes(tctx: Context, start: datetime, end: datetime) -> None:
    with tctx.sessions() as session:
        counts = th.theme_counts(session, start, end)
        if not counts:
            return
        titles = dict(
            session.execute(select(Theme.id, Theme.title).where(Theme.id.in_(counts))).all()
        )
    table = Table("id", "theme", "github", "stack exchange", title="themes in the window")
    ranked = sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    for tid, by_source in ranked[:20]:
        table.add_row(
            str(tid),
            Text(titles.get(tid, "")),  # worded from untrusted reports: never rich markup
            str(by_source.get("github", 0)),
            str(by_source.get("stackexchange", 0)),
        )
    console.print(table)


def duplicates(ctx: typer.Context, provider: ProviderOpt = None) -> None:
    """Link open items that report the same problem (never closes anything)."""
    from triage.analysis.duplicates import run as dups  # numpy/scikit-learn: only when used

    tctx = runtime(ctx).context()
    tctx.provider(provider)  # an unknown provider is a usage error, not a failed run
    with recorded(tctx, "duplicates") as rec, stages("duplicates") as progress:
        result = dups.run_for_context(tctx, provider, progress)
        rec.counts = runs.counts_of(result)
        if result.failed:
            rec.failed = f"{result.failed} candidate pairs could not be judged"
    embedded = (
        f", {result.embedded} embedded ({result.reused} unchanged vectors reused)"
        if result.embedded or result.reused
        else ""
    )
    console.print(
        f"duplicates: {result.open_items} open items, {result.searched} looked for neighbours"
        f" (new, changed, or near ones that changed){embedded}, {result.candidates} candidate"
        f" pairs, {result.judged} judged, {result.linked} new links"
        f" ({result.known} already linked)"
        + (f"; {result.calls} model calls" if result.calls else "")
        + (f"; {result.failed} pairs not judged, re-run to retry" if result.failed else "")
    )
    for link in result.links[:20]:
        console.print(
            f"  {link.key_a} ~ {link.key_b}  {link.confidence:.2f}  {link.reason}",
            markup=False,
            highlight=False,
        )
    if result.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(themes)
    app.command()(duplicates)
