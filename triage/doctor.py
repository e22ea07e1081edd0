"""`triage doctor`: every check prints one line; the command fails if any check fails."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import typer
from rich.markup import escape

from triage import logs, providers
from triage.commands.common import Runtime, console, runtime
from triage.config import config_path
from triage.context import Context
from triage.db import migrate
from triage.errors import CheckWarning, TriageError
from triage.sinks import SINKS
from triage.sources import SOURCES

Check = Callable[[Context], str]


Warn = CheckWarning  # a check that passes with a caveat: printed as `warn`, exit code 0


def _schema(ctx: Context) -> str:
    migrate.require_current(ctx.engine)
    return f"schema current ({migrate.current_revision(ctx.engine)})"


def _credentials(ctx: Context) -> str:
    s, cfg = ctx.secrets, ctx.config
    if ctx.fallback:  # the missing-key rule: the same fallback as every command and the daemon
        raise Warn(ctx.fallback)
    missing = []
    spec = providers.spec_for(cfg.llm.provider)  # an unknown name fails this check
    if providers.missing_secret(spec, s):
        missing.append(
            f'{spec.secret_env[0]} (or use [llm] provider = "{providers.offline().name}")'
        )
    present = [n for n, v in s.__dict__.items() if v is not None]
    if missing:
        raise TriageError("missing " + ", ".join(missing))
    return "credentials present: " + (", ".join(present) or "none needed")


def _lazy(target: str) -> Check:
    """A check from `module:function`, imported only when doctor runs it (no client loads early)."""
    module, _, name = target.partition(":")

    def check(ctx: Context) -> str:
        return str(getattr(importlib.import_module(module), name)(ctx))

    return check


def _provider_checks() -> list[tuple[str, Check]]:
    """One check per registered provider, and its embedding model's beside it when it embeds."""
    out: list[tuple[str, Check]] = []
    for spec in providers.PROVIDERS.values():
        if spec.doctor is None:
            continue
        out.append((spec.name, _lazy(spec.doctor)))
        if "embed" in spec.capabilities:
            module = spec.doctor.partition(":")[0]
            out.append((f"{spec.name} embeddings", _lazy(f"{module}:{providers.EMBEDDING_CHECK}")))
    return out


CHECKS: list[tuple[str, Check]] = [
    ("schema", _schema),
    ("credentials", _credentials),
    *[(spec.name, _lazy(spec.doctor)) for spec in SOURCES.values() if spec.doctor],
    *_provider_checks(),
    *((spec.name, _lazy(spec.doctor)) for spec in SINKS.values() if spec.doctor),
    ("schedule", _lazy("jobs.status:doctor_check")),
]


def run_checks(rt: Runtime) -> bool:
    ok = True
    ctx = rt.context(check_schema=False)
    path = config_path(rt.config_path)
    loaded = f"{path} loaded" if path.exists() else f"no {path}: defaults and TRIAGE_* environment"
    console.print(f"[green]ok[/]   config: {escape(loaded)}")
    for name, check in CHECKS:
        try:
            # Check texts name config sections ("[github] repos"): not rich markup.
            console.print(f"[green]ok[/]   {name}: {escape(logs.redact(check(ctx)))}")
        except Warn as exc:
            console.print(f"[yellow]warn[/] {name}: {escape(logs.redact(str(exc)))}")
        except TriageError as exc:
            ok = False
            console.print(f"[red]fail[/] {name}: {escape(logs.redact(str(exc)))}")
        except Exception as exc:  # one broken check must not hide the others
            ok = False
            reason = f"unexpected {type(exc).__name__}: {str(exc)[:200]}"
            console.print(f"[red]fail[/] {name}: {escape(logs.redact(reason))}")
    return ok


def doctor(ctx: typer.Context) -> None:
    """Check config, credentials, endpoints, model names and schema."""
    ok = run_checks(runtime(ctx))
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(doctor)
