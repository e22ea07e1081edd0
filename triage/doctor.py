"""`triage doctor`: every check prints one line; the command fails if any check fails."""

from __future__ import annotations

from collections.abc import Callable

from rich.markup import escape

from triage.commands.common import Runtime, console
from triage.config import config_path
from triage.context import Context
from triage.db import migrate
from triage.errors import TriageError

Check = Callable[[Context], str]


def _schema(ctx: Context) -> str:
    migrate.require_current(ctx.engine)
    return f"schema current ({migrate.current_revision(ctx.engine)})"


def _credentials(ctx: Context) -> str:
    s, cfg = ctx.secrets, ctx.config
    missing = []
    if cfg.llm.provider == "gemini" and not s.gemini_api_key:
        missing.append('GEMINI_API_KEY (or use [llm] provider = "local")')
    present = [n for n, v in s.__dict__.items() if v is not None]
    if missing:
        raise TriageError("missing " + ", ".join(missing))
    return "credentials present: " + (", ".join(present) or "none needed")


def _stackexchange(ctx: Context) -> str:
    from triage.sources.stackexchange import doctor_check

    return doctor_check(ctx)


CHECKS: list[tuple[str, Check]] = [("schema", _schema), ("credentials", _credentials)]
CHECKS.append(("stackexchange", _stackexchange))


def _github(ctx: Context) -> str:
    from triage.sources.github import doctor_check

    return doctor_check(ctx)


CHECKS.append(("github", _github))


def _openai(ctx: Context) -> str:
    from triage.providers.openai_compat import doctor_check

    return doctor_check(ctx)


CHECKS.append(("openai", _openai))


def _gemini(ctx: Context) -> str:
    from triage.providers.gemini import doctor_check

    return doctor_check(ctx)


CHECKS.append(("gemini", _gemini))


def _embeddings(ctx: Context) -> str:
    from triage.analysis.duplicates_llm import doctor_check

    return doctor_check(ctx)


CHECKS.append(("embeddings", _embeddings))


def _slack(ctx: Context) -> str:
    from triage.sinks.slack import check

    return check(ctx)


CHECKS.append(("slack", _slack))


def _schedule(ctx: Context) -> str:
    from jobs.status import doctor_check

    return doctor_check(ctx)


CHECKS.append(("schedule", _schedule))


def _local(ctx: Context) -> str:
    from triage.providers.local_store import doctor_check

    return doctor_check(ctx)


CHECKS.append(("local", _local))


def register_check(name: str, check: Check) -> None:
    """Features add their endpoint checks here (GitHub, Stack Exchange, Gemini, Slack)."""
    CHECKS.append((name, check))


def run_checks(rt: Runtime) -> bool:
    ok = True
    ctx = rt.context(check_schema=False)
    path = config_path(rt.config_path)
    loaded = f"{path} loaded" if path.exists() else f"no {path}: defaults and TRIAGE_* environment"
    console.print(f"[green]ok[/]   config: {escape(loaded)}")
    for name, check in CHECKS:
        try:
            # Check texts name config sections ("[github] repos"): not rich markup.
            console.print(f"[green]ok[/]   {name}: {escape(check(ctx))}")
        except TriageError as exc:
            ok = False
            console.print(f"[red]fail[/] {name}: {escape(str(exc))}")
    return ok
