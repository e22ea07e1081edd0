"""Engine and session factory; SQLite gets WAL and a busy timeout so readers don't block writers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from triage.errors import ConfigError, SchemaOutOfDate, TriageError


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, create: bool = True) -> Engine:
    """Create an engine and check that the database can be opened.

    `create=False` refuses a SQLite file that does not exist yet instead of leaving an empty one
    behind: only `triage init` and `triage db upgrade` create the database.
    """
    example = "e.g. sqlite:///triage.db or postgresql+psycopg://user@host/db"
    if not url.strip():
        raise ConfigError(f"database.url is empty: set it, {example}")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database.url {_safe(url)} is not a database URL: {example}") from None
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not Path(db).parent.exists():
            raise ConfigError(
                f"cannot open database {_safe(url)}: folder {Path(db).parent} does not exist"
            )
        if db and db != ":memory:" and not create and not Path(db).exists():
            raise SchemaOutOfDate(
                f"no database at {db}: run `triage init` (or `triage db upgrade`)"
            )
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        hint = " (install triage[postgres])" if "postgres" in url else ""
        raise ConfigError(f"cannot use database {_safe(url)}: {exc}{hint}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        raise TriageError(f"cannot open database {_safe(url)}: {reason}") from None
    return engine


def _safe(url: str) -> str:
    """The URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Without an '@' there is no password to hide, and the value helps to spot the typo.
        return repr(url) if "@" not in url else "<unparseable URL>"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())
