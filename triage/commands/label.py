"""`triage label [--apply]`: show the label plan; write it to GitHub only with --apply."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from triage.commands.common import console, err_console, runtime
from triage.sinks.labels import plan as labels_plan


def label(
    ctx: typer.Context,
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the planned labels to GitHub")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Show or write at most N issues")
    ] = None,
) -> None:
    """Plan label changes from the analyses; write them only with --apply."""
    tctx = runtime(ctx).context()
    plan = labels_plan.plan(tctx)
    if limit is not None:
        plan.issues = plan.issues[:limit]
    for key, name in plan.new_corrections:
        console.print(
            f"correction: a human removed {name!r} from {key}; it is never added again",
            markup=False,
        )
    table = Table("issue", "add labels", "confidence", "reason", title="label plan")
    for issue in plan.issues:
        # Text cells: titles and summaries are untrusted and may look like rich markup.
        table.add_row(
            Text(f"{issue.repo}#{issue.number}"),
            Text(", ".join(issue.labels)),
            f"{issue.confidence:.2f}",
            Text(issue.reason),
        )
    if plan.issues:
        console.print(table)
    held = ", ".join(f"{n} {why}" for why, n in plan.held.most_common())
    console.print(
        f"{len(plan.issues)} issues, {plan.writes} labels to add"
        + (f"; left alone: {held}" if held else ""),
        markup=False,
    )
    if not apply:
        if plan.issues:
            console.print("dry run: nothing written (add --apply to write)", style="dim")
        return
    from triage.sinks.labels import apply as labels_apply  # PyGithub loads only to write

    result = labels_apply.apply(tctx, plan)
    for line in dict.fromkeys(result.errors):
        err_console.print(f"error: {line}", markup=False, highlight=False)
    for why in dict.fromkeys(why for _key, _name, why in result.skipped):
        err_console.print(f"warning: {why}", markup=False, highlight=False)
    c = result.counts()
    console.print(
        f"applied {c['applied']} labels, skipped {c['skipped']}, failed {c['failed']}"
        + (f", created {c['labels_created']} labels" if c["labels_created"] else "")
        + ("; failed writes are retried on the next run" if c["failed"] else ""),
        markup=False,
    )
    if result.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(label)
