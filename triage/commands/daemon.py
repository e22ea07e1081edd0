"""`triage run`: the daemon that keeps everything current on the [schedule] of the config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from triage.commands.common import runtime
from triage.logs import get_logger

if TYPE_CHECKING:
    from triage.context import Context

log = get_logger("triage.daemon")


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
    from jobs.daemon import Daemon, Options

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


def advise(ctx: Context) -> None:
    """Say what the daemon will do with what is configured."""
    cfg, secrets = ctx.config, ctx.secrets
    ctx.say_fallback()  # the missing-key rule, applied where the Context was made
    if not cfg.github.repos and not cfg.stackexchange.tags:
        log.warning(
            "no sources configured: set [github] repos or [stackexchange] tags;"
            " the daemon keeps running and syncs once they are set and it is restarted"
        )
    slack = secrets.slack_bot_token is not None or secrets.slack_webhook_url is not None
    if cfg.digest.to == "auto" and not slack:
        log.info("Slack is not configured: digests are written to files", folder=cfg.digest.out_dir)
    if not cfg.labels.apply:
        log.info("label write-back is off ([labels] apply = false); `triage label` shows the plan")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
