"""Causes the last-line handler would call "unexpected", said as one line naming the fix.

See README "When something goes wrong" for the table of causes, fixes and exit codes.
"""

from __future__ import annotations

import errno
import fcntl
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from triage.errors import TriageError


def explain(exc: BaseException, database_url: str | None) -> TriageError | None:
    """The one-line error for a known cause, or None when the cause is not known."""
    text = _text(exc)
    if "database is locked" in text or "database table is locked" in text:
        return TriageError(
            f"the database is locked by {_holder(database_url)}; SQLite waited 30 s for it:"
            " let that finish (or stop it) and re-run, or use PostgreSQL ([database] url)"
            " for several processes at once; work committed so far is kept"
        )
    if _disk_full(exc, text):
        return TriageError(
            "the disk is full (no space left for the database or output): free space and"
            " re-run; work committed so far is kept"
        )
    return None


def _text(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    return f"{exc} {orig or ''}".lower()


def _disk_full(exc: BaseException, text: str) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return any(
        marker in text
        for marker in ("database or disk is full", "no space left on device", "diskfull")
    )


def _holder(database_url: str | None) -> str:
    """Who holds a SQLite file: the daemon's lock file names its PID; else another process."""
    path = _sqlite_path(database_url)
    if path is None:
        return "another process"
    lock = path.with_name(path.name + ".daemon.lock")
    if lock.exists():
        try:
            with lock.open("r", encoding="utf-8") as fh:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                except OSError:  # held: the daemon is running
                    pid = fh.read().strip() or "pid unknown"
                    return f"the triage daemon ({pid}) running on {path}"
        except OSError:
            pass
    return f"another triage process (or a program with {path.name} open)"


def _sqlite_path(database_url: str | None) -> Path | None:
    if not database_url:
        return None
    try:
        url = make_url(database_url)
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()
