"""The markdown, html and stdout sinks: the digest as one document, a view of the data."""

from __future__ import annotations

import sys
from pathlib import Path

from triage.context import Context
from triage.db import deliveries
from triage.digest import Digest
from triage.sinks import files
from triage.sinks.base import Options, Outcome


def deliver_file(ctx: Context, d: Digest, fmt: str, out: Path | None, dry_run: bool) -> str:
    """Write (or overwrite) the file; a file is a view of the data, so rewriting it is harmless."""
    path = out or files.default_path(ctx.config.digest.out_dir, d, fmt)
    content = files.render_markdown(d) if fmt == "markdown" else files.render_html(d)
    if dry_run:
        return f"would write {path} ({len(content.encode()):,} bytes)"
    files.write_file(path, content)
    deliveries.save(ctx.sessions, fmt, str(path.resolve()), d.start, d.end, str(path))
    return f"wrote {path}"


def _file(ctx: Context, d: Digest, fmt: str, options: Options) -> Outcome:
    detail = deliver_file(ctx, d, fmt, options.out, options.dry_run)
    return Outcome("dry-run" if options.dry_run else "written", detail)


def markdown(ctx: Context, d: Digest, options: Options) -> Outcome:
    return _file(ctx, d, "markdown", options)


def html(ctx: Context, d: Digest, options: Options) -> Outcome:
    return _file(ctx, d, "html", options)


def stdout(_ctx: Context, d: Digest, _options: Options) -> Outcome:
    """The Markdown on standard output, for a pipe; nothing is recorded, so nothing is skipped."""
    sys.stdout.write(files.render_markdown(d))
    return Outcome("written", "")
