"""The `triage` command: parse, call, print. Every error is one line and an exit code."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import Abort, TyperException

from triage import doctor, logs
from triage.commands import (
    admin,
    analyze,
    daemon,
    digest,
    evaluate,
    failures,
    ingest,
    label,
    themes,
)
from triage.errors import TriageError

app = typer.Typer(
    help="Triage GitHub issues and Stack Overflow questions: ingest, classify, group, digest.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state: dict[str, object] = {"debug": False}


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Config file (default: $TRIAGE_CONFIG or ./triage.toml)"
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs")] = False,
) -> None:
    from triage.commands.common import Runtime

    _state["debug"] = debug
    ctx.obj = _state["runtime"] = Runtime(config_path=config, debug=debug)


# Each feature's commands live in their own module; this order is the order of `triage --help`.
CORE = (admin, doctor, ingest, analyze, themes, digest, label, daemon, evaluate)
for _module in CORE:
    _module.register(app)


def _usage_error(exc: TyperException) -> None:
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    code = int(getattr(exc, "exit_code", 2))
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare `triage` or `triage db`: the help
        typer.echo(message)
        sys.exit(code)
    ctx = getattr(exc, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    typer.echo(f"error: {message}{where}", err=True)
    sys.exit(code)


def _database_url() -> str | None:
    """The database the failed command used, if it got as far as reading the config."""
    runtime = _state.get("runtime")
    ctx = getattr(runtime, "_ctx", None)
    return ctx.config.database.url if ctx is not None else None


def main() -> None:
    debug = "--debug" in sys.argv
    try:
        # Not standalone: usage errors and Ctrl-C come back here, to be said in one line.
        code = app(standalone_mode=False)
    except Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except TyperException as exc:  # click's usage errors, re-exported by Typer
        _usage_error(exc)
    except TriageError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {logs.redact(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted: work committed so far is kept; re-run to continue", err=True)
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one line, no traceback
        if debug:
            traceback.print_exc()
        known = failures.explain(exc, _database_url())
        if known is not None:
            typer.echo(f"error: {logs.redact(str(known))}", err=True)
            sys.exit(known.exit_code)
        msg = logs.redact(str(exc).splitlines()[0] if str(exc) else "")
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {msg} (re-run with --debug for details)",
            err=True,
        )
        sys.exit(1)
    if code == 130:  # Typer turns Ctrl-C into exit code 130
        typer.echo("interrupted: work committed so far is kept; re-run to continue", err=True)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
