"""`triage eval`: compare providers against human labels (a CSV pair, or a source split by time)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from triage.commands.common import console, err_console, runtime
from triage.context import Context
from triage.db.engine import transaction
from triage.errors import ConfigError, TriageError
from triage.providers import PROVIDERS

if TYPE_CHECKING:
    from triage.analysis.evaluate.run import ProviderReport
    from triage.providers.base import Classifier

KNOWN = tuple(PROVIDERS)


class SplitBy(StrEnum):
    """`--split`: how --source items divide into training and test (analysis/evaluate/split)."""

    stratified = "stratified"
    time = "time"


def eval_command(
    ctx: typer.Context,
    train: Annotated[
        Path | None, typer.Option("--train", help="Training CSV: repo,created_at,label,title,body")
    ] = None,
    test: Annotated[Path | None, typer.Option("--test", help="Test CSV, same columns")] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="github:OWNER/REPO in the database: train on older, test on newer"
        ),
    ] = None,
    provider: Annotated[
        list[str] | None,
        typer.Option("--provider", "-p", help="local, gemini or openai; repeat to compare"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML report with charts")
    ] = None,
    target_precision: Annotated[
        float,
        typer.Option(
            "--target-precision",
            min=0.0,
            max=1.0,
            help="Precision each label's threshold must reach",
        ),
    ] = 0.9,
    save: Annotated[
        bool,
        typer.Option("--save-thresholds", help="Store per-label thresholds for `triage label`"),
    ] = False,
    train_share: Annotated[
        float,
        typer.Option("--train-share", help="With --source: share of oldest items to train on"),
    ] = 0.8,
    shots: Annotated[
        str | None,
        typer.Option(
            "--shots",
            help="Prompted providers once per setting, e.g. 0,3,50,all (examples per label)",
        ),
    ] = None,
    split_by: Annotated[
        SplitBy,
        typer.Option(
            "--split",
            help="With --source: stratified (each label's newest items test) or time (the newest"
            " items test)",
        ),
    ] = SplitBy.stratified,
) -> None:
    """Quality and cost of providers against human labels: macro-F1 per repository and mean."""
    # scikit-learn and matplotlib load here, not when the CLI starts
    from triage.analysis.evaluate import report as eval_report
    from triage.analysis.evaluate.data import check_categories, read_csv, rows_from_db
    from triage.analysis.evaluate.run import evaluate
    from triage.analysis.evaluate.shots import Shots
    from triage.analysis.evaluate.split import small_labels, warning
    from triage.analysis.evaluate.split import split as split_rows

    settings = [Shots.parse(v) for v in shots.split(",")] if shots is not None else []
    names = list(dict.fromkeys(provider or ["local"]))
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise ConfigError(f"unknown provider {unknown[0]!r} (known: {', '.join(KNOWN)})")
    if html and not html.parent.is_dir():  # found out now, not after the evaluation
        raise ConfigError(f"--html: the folder {html.parent} does not exist")
    rt = runtime(ctx)
    if source and (train or test):
        raise ConfigError("give either --train and --test, or --source, not both")
    # A metered provider's calls are recorded in llm_calls; the local model needs no database.
    metered = any(PROVIDERS[n].metered for n in names)
    needs_db = bool(source) or save or metered
    tctx = rt.context(check_schema=needs_db)
    if source:
        with tctx.sessions() as s:
            rows = rows_from_db(s, tctx.config, source)
        train_rows, test_rows, how = split_rows(rows, split_by.value, train_share)
        data = f"{source}, {how}"
    elif train and test:
        train_rows, test_rows = read_csv(train), read_csv(test)
        check_categories([*train_rows, *test_rows], tctx.config)
        data = f"{train.name} -> {test.name}"
    else:
        raise ConfigError(
            "give --train TRAIN.csv and --test TEST.csv, or --source github:OWNER/REPO"
        )

    # a missing key or unknown model fails now, not after the local model has trained
    remote: dict[str, Classifier] = {
        n: tctx.provider(n) for n in names if "train" not in PROVIDERS[n].capabilities
    }

    small = small_labels(test_rows)
    if not as_json:
        err_console.print(
            f"evaluating {', '.join(names)} on {len(test_rows)} test items"
            f" ({len(train_rows)} for training)"
        )
        if small:
            err_console.print(warning(small), highlight=False, markup=False)
    reports = evaluate(
        tctx.config, train_rows, test_rows, names, remote.__getitem__, target_precision, settings
    )
    if metered:
        from triage.analysis.evaluate.run import record_eval_calls

        with transaction(tctx.sessions) as s:
            record_eval_calls(s, reports)
    meta: dict[str, Any] = {
        "data": data,
        "train_size": len(train_rows),
        "test_size": len(test_rows),
        "target_precision": target_precision,
        "split": split_by.value if source else "files",
        "small_labels": small,
    }
    if save:
        meta["saved_thresholds"] = _save(tctx, reports)
    if html:
        html.write_text(eval_report.to_html(reports, meta), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(eval_report.to_json(reports, meta), indent=2))
    else:
        eval_report.render(console, reports, meta)
        if save:
            saved = ", ".join(meta["saved_thresholds"]) or "nothing"
            console.print(f"saved thresholds for: {saved}")
        if html:
            console.print(f"wrote {html}")
    _fail_if_stopped(reports)


def _fail_if_stopped(reports: list[ProviderReport]) -> None:
    """A provider that gave up scores its unanswered items as misses: say why, exit 1."""
    stopped = [r for r in reports if r.stopped]
    if stopped:
        raise TriageError(
            "; ".join(
                f"{r.provider} stopped with {r.unanswered} of {len(r.predictions)} test items"
                f" unanswered ({r.stopped})"
                for r in stopped
            )
        )


def _save(tctx: Context, reports: list[ProviderReport]) -> list[str]:
    from triage.analysis.evaluate.run import save_thresholds

    saved = []
    with transaction(tctx.sessions) as s:
        for report in reports:
            saved += [f"{lb} ({report.provider})" for lb in save_thresholds(s, report, tctx.config)]
    return saved


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
