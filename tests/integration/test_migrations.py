from __future__ import annotations

from triage.db import migrate
from triage.db.engine import make_engine, table_names
from triage.db.schema import Base


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    assert set(Base.metadata.tables) <= table_names(engine)
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert not (set(Base.metadata.tables) & table_names(engine))
    migrate.upgrade(engine)
    assert set(Base.metadata.tables) <= table_names(engine)
    engine.dispose()


def test_models_match_migrations(db_url: str) -> None:
    """The typed models and the migration scripts describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(db_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []
