"""Every place a digest can go (SINKS), and the one `deliver` that the CLI and daemon share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from triage.context import Context
from triage.digest import Digest
from triage.errors import ConfigError
from triage.sinks import documents
from triage.sinks.base import Echo, Options, Outcome
from triage.sinks.slack.deliver import deliver_with as deliver_slack


@dataclass(frozen=True)
class SinkSpec:
    name: str  # the `--to` and `[digest] to` value
    configured: Callable[[Context], bool]  # whether `auto` may choose it
    deliver: Callable[[Context, Digest, Options], Outcome]
    doctor: str | None  # "module:function" (ctx) -> str, imported only when doctor runs


def _always(_ctx: Context) -> bool:
    return True


def _slack_configured(ctx: Context) -> bool:
    return ctx.slack.configured


SINKS: dict[str, SinkSpec] = {
    spec.name: spec
    for spec in (
        SinkSpec("slack", _slack_configured, deliver_slack, "triage.sinks.slack.doctor:check"),
        SinkSpec("markdown", _always, documents.markdown, None),
        SinkSpec("html", _always, documents.html, None),
        SinkSpec("stdout", _always, documents.stdout, None),
    )
}


def destination(ctx: Context, requested: str | None = None) -> str:
    """`auto`: Slack when a bot token or webhook is set, else a Markdown file."""
    choice = requested or ctx.config.digest.to
    if choice == "auto":
        return "slack" if SINKS["slack"].configured(ctx) else "markdown"
    if choice not in SINKS:
        raise ConfigError(f"unknown digest destination {choice!r}: choose from {', '.join(SINKS)}")
    return choice


def deliver(
    ctx: Context,
    digest: Digest,
    to: str | None = None,
    out: Path | None = None,
    dry_run: bool = False,
    force: bool = False,
    echo: Echo = print,
) -> Outcome:
    """Deliver to `to` (default `[digest] to`, `auto` resolved here), once per window and target."""
    spec = SINKS[destination(ctx, to)]
    return spec.deliver(ctx, digest, Options(out=out, dry_run=dry_run, force=force, echo=echo))
