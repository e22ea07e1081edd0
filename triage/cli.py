"""The `triage` command: parse, call, print. Every error is one line and an exit code."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
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
from triage.help_text import name_values

app = typer.Typer(
    help="Triage GitHub issues and Stack Overflow questions: ingest, classify, group, digest.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Help is plain text: config keys such as `[llm] provider` are shown literally, never read
    # as rich markup, and flags show as flags.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state: dict[str, object] = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("triage")
        except PackageNotFoundError:  # a checkout run without installing
            number = "unknown (not installed)"
        typer.echo(f"triage {number}")
        raise typer.Exit()


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
    _show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit"
        ),
    ] = False,
) -> None:
    from triage.commands.common import Runtime

    _state["debug"] = debug
    ctx.obj = _state["runtime"] = Runtime(config_path=config, debug=debug)


# Each feature's commands live in their own module; this order is the order of `triage --help`.
CORE = (admin, doctor, ingest, analyze, themes, digest, label, daemon, evaluate)
for _module in CORE:
    _module.register(app)


def command() -> Any:
    """The command behind `app`, with value names in its help (help_text.py)."""
    cmd = typer.main.get_command(app)
    name_values(cmd, typer.Context(cmd))
    return cmd


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
        code = command().main(prog_name="triage", standalone_mode=False)
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
