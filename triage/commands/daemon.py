"""`triage run`: the daemon that keeps everything current on the [schedule] of the config."""

from __future__ import annotations

from typing import Annotated

import typer

from triage.commands.common import runtime


def run(
    ctx: typer.Context,
    health_port: Annotated[
        int | None,
        typer.Option("--health-port", min=0, max=65535, help="Serve /healthz and /metrics here"),
    ] = None,
    health_host: Annotated[
        str,
        typer.Option("--health-host", help="Address for the health server (0.0.0.0 in containers)"),
    ] = "127.0.0.1",
    once: Annotated[
        bool, typer.Option("--once", help="Run every scheduled job once, in order, and exit")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option("--only", help="Comma-separated jobs to run (default: all configured)"),
    ] = None,
    stop_timeout: Annotated[
        float,
        typer.Option(
            "--stop-timeout",
            min=0,
            help="Seconds to let a running job finish after SIGTERM before it is checkpointed",
        ),
    ] = 60.0,
    replica: Annotated[
        str | None, typer.Option("--replica", help="Name in the job log (default: HOST:PID)")
    ] = None,
    tick_every: Annotated[float | None, typer.Option("--test-tick-every", hidden=True)] = None,
    tick_seconds: Annotated[float, typer.Option("--test-tick-seconds", hidden=True)] = 1.0,
) -> None:
    """Run the daemon: sync, analyze, themes, duplicates, digest, labels and polling on schedule."""
    from jobs import registry
    from jobs.daemon import Daemon, Options, advise

    tctx = runtime(ctx).context()
    if tick_every is not None:
        # Test-only: a lone job that works for `tick_seconds` at every slot.
        specs = [registry.tick_job(tick_every, tick_seconds)]
    else:
        names = [n.strip() for n in only.split(",") if n.strip()] if only else None
        specs = registry.select_jobs(tctx, names)
    daemon = Daemon(
        tctx,
        specs,
        Options(
            health_port=health_port,
            health_host=health_host,
            stop_timeout=stop_timeout,
            replica=replica,
        ),
    )
    daemon.acquire()  # a second daemon on one SQLite file refuses with one line, before any advice
    if tick_every is None:
        advise(tctx)
    code = daemon.run_once() if once else daemon.serve()
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
