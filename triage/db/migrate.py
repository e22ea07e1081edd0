"""Alembic helpers. The scripts are alembic/ of the source tree, shipped in every install."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from triage import shipped
from triage.errors import SchemaOutOfDate


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(shipped.migrations()))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def require_current(engine: Engine) -> None:
    """Refuse to work on a database whose schema is missing or behind the code."""
    current, head = current_revision(engine), head_revision(engine)
    if current != head:
        state = "has no triage schema" if current is None else f"is at revision {current}"
        raise SchemaOutOfDate(
            f"database {state}, code needs {head}: run `triage db upgrade` (or `triage init`)"
        )
