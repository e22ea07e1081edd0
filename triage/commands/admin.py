"""init, db, status, export."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func, select

from triage import shipped
from triage.commands.common import console, runtime
from triage.commands.run_summary import PHRASES, summary, took
from triage.config import config_path
from triage.db import migrate, store
from triage.db.schema import Analysis, Item, JobRun, LLMCall
from triage.errors import ConfigError
from triage.export import export_items

db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)


def init(
    ctx: typer.Context,
    repo: Annotated[
        list[str] | None,
        typer.Option("--repo", help="OWNER/REPO to watch instead of the example (repeatable)"),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Stack Overflow tag to watch instead of the example"),
    ] = None,
) -> None:
    """Write triage.toml from the example if missing, then create or upgrade the database."""
    rt = runtime(ctx)
    target = config_path(rt.config_path)
    own = repo is not None or tag is not None
    if target.exists():
        if own:
            raise ConfigError(f"{target} exists: set [github] repos and [stackexchange] tags there")
        console.print(f"config: {target} exists, left as it is")
    else:
        text = shipped.example_config().read_text(encoding="utf-8")
        if own:
            text = own_sources(text, repo or [], tag or [])
        target.write_text(text, encoding="utf-8")
        what = "your sources" if own else "the example sources (replace them with yours)"
        console.print(f"config: wrote {target} watching {what}")
    tctx = rt.context(check_schema=False, create=True)
    migrate.upgrade(tctx.engine)
    console.print(f"database: schema at {migrate.current_revision(tctx.engine)}")


def own_sources(example: str, repos: list[str], tags: list[str]) -> str:
    """The example config with its example sources replaced by `--repo` and `--tag`."""
    from triage.sources.stackexchange import tag_name

    for spec in repos:
        owner, _, name = spec.strip().partition("/")
        if not owner or not name or "/" in name:
            raise ConfigError(f"--repo: expected OWNER/REPO or OWNER/*, got {spec!r}")
    values = {
        "repos": json.dumps([r.strip() for r in repos]),
        "tags": json.dumps([tag_name(t) for t in tags]),
    }
    lines = []
    for line in example.splitlines(keepends=True):
        key = line.split("=", 1)[0].strip()
        if key in values and "# default []" in line:
            line = f"{key} = {values.pop(key)}" + line[line.index("  ") :]
        lines.append(line)
    text = "".join(lines)
    return re.sub(r"(?m)^# example sources, replace with yours.*$", "# your sources", text)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    engine = runtime(ctx).context(check_schema=False, create=True).engine
    migrate.upgrade(engine, revision)
    console.print(f"database: schema at {migrate.current_revision(engine)}")


@db_app.command("downgrade")
def db_downgrade(ctx: typer.Context, revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes every table)."""
    engine = runtime(ctx).context(check_schema=False).engine
    migrate.downgrade(engine, revision)
    current = migrate.current_revision(engine)
    console.print(f"database: schema at {current or 'base (no triage tables)'}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Show the schema revision of the database and of the code."""
    engine = runtime(ctx).context(check_schema=False).engine
    console.print(
        f"database: {migrate.current_revision(engine)}  code: {migrate.head_revision(engine)}"
    )


def status_data(ctx: typer.Context) -> dict[str, Any]:
    tctx = runtime(ctx).context()
    now = store.utcnow()
    with tctx.sessions() as s:
        items = store.count_items(s)
        analysed = s.scalar(
            select(func.count(func.distinct(Analysis.item_key))).join(
                Item, (Item.key == Analysis.item_key) & (Item.content_hash == Analysis.content_hash)
            )
        )
        cursors = [
            {
                "name": c.name,
                "value": c.value,
                "done": bool(c.state.get("done")),
                "updated_at": c.updated_at.isoformat(),
            }
            for c in store.all_cursors(s)
        ]
        spend = {}
        for label, since in (
            ("today", now.replace(hour=0, minute=0, second=0, microsecond=0)),
            ("7d", now - timedelta(days=7)),
        ):
            row = s.execute(
                select(
                    func.coalesce(func.sum(LLMCall.input_tokens), 0),
                    func.coalesce(func.sum(LLMCall.output_tokens), 0),
                    func.coalesce(func.sum(LLMCall.cost_usd), 0.0),
                    func.count(LLMCall.id),
                    func.coalesce(func.sum(LLMCall.thinking_tokens), 0),
                ).where(LLMCall.created_at >= since)
            ).one()
            spend[label] = {
                "input_tokens": int(row[0]),
                "output_tokens": int(row[1]),
                "cost_usd": round(float(row[2]), 4),
                "calls": int(row[3]),
                "thinking_tokens": int(row[4]),  # of output_tokens
            }
        failures = s.scalar(
            select(func.count(JobRun.id)).where(
                JobRun.outcome == "failed", JobRun.started_at >= now - timedelta(days=1)
            )
        )
    from jobs import status as job_status

    # Every job with its schedule, next run and last run (any replica), and recent failures.
    last_runs = job_status.job_status(tctx)
    recent_failures = job_status.failures(tctx)
    total = sum(items.values())
    return {
        "items": items,
        "total_items": total,
        "backlog": total - int(analysed or 0),
        "cursors": cursors,
        "spend": spend,
        "jobs": last_runs,
        "units_in_flight": job_status.units_in_flight(tctx),
        "job_failures_24h": int(failures or 0),
        "recent_failures": recent_failures,
    }


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable")] = False,
) -> None:
    """Cursors, backlog, last job runs, failures and model spend."""
    data = status_data(ctx)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    by_source = ", ".join(f"{k} {v}" for k, v in data["items"].items())
    console.print(
        f"items: {data['total_items']} ({by_source or 'none'})"
        f"  awaiting analysis: {data['backlog']}"
    )
    table = Table("cursor", "position", "complete", "updated")
    for c in data["cursors"]:
        # Only a backfill has an end; a sync cursor just moves on.
        complete = ("yes" if c["done"] else "no") if c["name"].startswith("backfill:") else "-"
        table.add_row(c["name"], c["value"] or "-", complete, c["updated_at"])
    console.print(table)
    for label, s in data["spend"].items():
        console.print(
            f"spend {label}: {s['calls']} calls, {s['input_tokens']} in /"
            f" {s['output_tokens']} out tokens ({s['thinking_tokens']} thinking),"
            f" ~${s['cost_usd']:.4f}"
        )
    if data["jobs"]:
        jobs = Table(
            "job", "schedule", "last run (UTC)", "outcome", "took", "next run (UTC)", "error"
        )
        for name, run in data["jobs"].items():
            # Texts name config sections ("[schedule] themes = off"): not rich markup.
            jobs.add_row(
                name,
                escape(run.get("schedule") or "-"),
                _seconds(run["started_at"]) if run["started_at"] else "never",
                run["outcome"] or "-",
                took(run.get("took_seconds")),
                escape(f"off: {run['off']}") if run.get("off") else _seconds(run.get("next_run")),
                escape(run["error"] or ""),
            )
        console.print(jobs)
        for name in PHRASES:
            line = summary(name, data["jobs"].get(name, {}))
            if line is not None:
                console.print(line, markup=False, highlight=False)
    for u in data["units_in_flight"]:
        console.print(
            f"in flight: {u['job']} {u['unit']} on {u['replica']} (attempt {u['attempt']},"
            f" lease until {_seconds(u['lease_until'])} UTC)",
            markup=False,
            highlight=False,
        )
    console.print(f"job failures in the last 24h: {data['job_failures_24h']}")
    for f in data.get("recent_failures", [])[:5]:
        console.print(
            f"  {f['started_at']} {f['job']} {f['outcome']}: {f['error'] or ''}",
            markup=False,
            highlight=False,
        )


def _seconds(iso: str | None) -> str:
    """An ISO time to the second, so the jobs table fits a terminal."""
    return iso[:19].replace("T", " ") if iso else "-"


def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (default: stdout)")
    ] = None,
) -> None:
    """Items with their analysis, theme and duplicate links."""
    if fmt not in ("jsonl", "csv"):
        raise ConfigError(f"--format must be jsonl or csv, not {fmt!r}")
    tctx = runtime(ctx).context()
    if out is None:
        n = export_items(tctx.sessions, fmt, sys.stdout)
    else:
        try:
            fh = out.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot write there ({exc.strerror})") from None
        with fh:
            n = export_items(tctx.sessions, fmt, fh)
        console.print(f"wrote {n} items to {out}", style="dim")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.add_typer(db_app, name="db")
    app.command()(status)
    app.command()(export)
