"""`triage analyze`: classify and summarize every item whose text is new or changed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from triage.analysis import classify
from triage.analysis.classify import RunStats
from triage.commands.common import console, err_console, runtime
from triage.context import Context
from triage.errors import TriageError
from triage.providers.base import Classifier, ModelAdvisor, end_run


@contextmanager
def _progress(total: int) -> Iterator[Any]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]analysing"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} items"),
        TextColumn("{task.fields[calls]} calls"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    task = progress.add_task("analyse", total=total, calls=0)

    def hook(stats: RunStats) -> None:
        progress.update(task, completed=stats.done + len(stats.failed), calls=stats.calls)

    with progress:
        yield hook


def summary(stats: RunStats) -> str:
    """One line a maintainer can read: what got done, what it cost, what is left."""
    line = (
        f"{stats.provider}/{stats.model}: {stats.analysed} analysed,"
        f" {stats.reviews} need review, {len(stats.failed)} still pending;"
        f" {stats.calls} calls, {stats.input_tokens:,} input tokens"
        f" ({stats.cached_tokens:,} cached), {stats.output_tokens:,} output tokens"
        f" ({stats.thinking_tokens:,} thinking),"
        f" ~${stats.cost_usd:.4f}"
    )
    if stats.dropped:
        line += f"; {stats.dropped} answers outside the allowlist dropped"
    return line


def _finish(stats: RunStats) -> None:
    """Exit 0 when every item got a result or a review; 1 while items are still pending."""
    if stats.exhausted is not None:
        raise stats.exhausted
    if stats.failed:
        reason = stats.stopped or next(iter(stats.failed.values()))
        raise TriageError(
            f"{len(stats.failed)} items still pending ({reason}); re-run `triage analyze`"
        )


def _batch(
    tctx: Context, chosen: Classifier, limit: int | None, reanalyze: bool, submit: bool, poll: bool
) -> None:
    from triage.analysis import batch

    provider = batch.batch_provider(chosen)
    pending = False
    try:
        if poll:
            got = batch.poll(tctx, provider)
            console.print(
                f"batch jobs: {len(got.collected)} collected, {len(got.running)} still running"
            )
            for name, why in got.failed_jobs.items():
                console.print(
                    f"job {name} failed ({why}); its items are pending again", markup=False
                )
            for stats in (got.outcome, got.retried):
                if stats is not None and (stats.calls or stats.failed):
                    console.print(summary(stats), soft_wrap=True)
            final = got.retried or got.outcome
            pending = bool(got.failed_jobs) or bool(final and final.failed)
        if submit:
            sent = batch.submit(tctx, provider, limit=limit, reanalyze=reanalyze)
            if sent.jobs:
                console.print(
                    f"submitted {len(sent.jobs)} batch jobs ({sent.requests} requests,"
                    f" {sent.items} items): {', '.join(sent.jobs)};"
                    " collect them with `triage analyze --poll`"
                )
            elif sent.exhausted is None:
                console.print("nothing to analyse")
            if sent.exhausted is not None:
                raise sent.exhausted
    finally:
        end_run(provider)
    if pending:
        raise TriageError("some batch results could not be used; re-run `triage analyze`")


def analyze(
    ctx: typer.Context,
    provider: Annotated[
        str | None,
        typer.Option("--provider", help="gemini, local or openai (default: [llm] provider)"),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Analyse at most N items this run")
    ] = None,
    batch_mode: Annotated[
        bool,
        typer.Option("--batch-mode", help="Submit Gemini Batch Mode jobs (half price, slower)"),
    ] = False,
    poll: Annotated[bool, typer.Option("--poll", help="Collect finished Batch Mode jobs")] = False,
    reanalyze: Annotated[
        bool,
        typer.Option("--reanalyze", help="Analyse again even items whose text is unchanged"),
    ] = False,
) -> None:
    """Classify and summarize every item whose text is new or changed."""
    tctx = runtime(ctx).context()
    chosen = tctx.provider(provider)
    if batch_mode or poll:
        _batch(tctx, chosen, limit, reanalyze, batch_mode, poll)
        return
    with tctx.sessions() as s:
        planned = len(classify.pending_items(s, chosen, limit=limit, reanalyze=reanalyze))
        held = len(classify.keys_in_open_batches(s, chosen)) if planned == 0 else 0
    if planned == 0:
        done = f"{chosen.name}/{chosen.model} ({chosen.prompt_version})"
        line = f"nothing to analyse: every item has an analysis by {done}"
        if held:
            line = (
                f"nothing to analyse: {held} items wait in Batch Mode jobs (`triage analyze"
                f" --poll` collects them), every other item has an analysis by {done}"
            )
        console.print(line, markup=False, soft_wrap=True)
        return
    if isinstance(chosen, ModelAdvisor):
        notice = chosen.model_notice(for_run=True)  # said once per run, before any call
        if notice:
            err_console.print(f"warning: {notice}", markup=False, soft_wrap=True)
    with _progress(planned) as hook:
        stats = classify.run(tctx, chosen, limit=limit, reanalyze=reanalyze, on_batch=hook)
    console.print(summary(stats), soft_wrap=True)
    _finish(stats)


def register(app: typer.Typer) -> None:
    app.command()(analyze)
