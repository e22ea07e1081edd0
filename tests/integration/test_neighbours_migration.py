"""0007: the neighbours the export showed as `related` move from a cursor row into a table."""

from __future__ import annotations

import sqlalchemy as sa

from tests.integration.test_github_keys_migration import NEW, _item
from triage.db import migrate, related
from triage.db.engine import make_engine, session_factory


def test_the_stored_neighbours_survive_the_upgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine, "0006")
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    a, b, c = "github:octo/demo#1", "github:octo/demo#2", "github:octo/demo#3"
    with engine.begin() as conn:
        conn.execute(t["items"].insert(), [_item(k, k, NEW) for k in (a, b, c)])
        conn.execute(
            t["cursors"].insert(),
            [
                {
                    "name": "duplicates:related",
                    "value": None,
                    "state": {a: [[b, 0.61], [c, 0.2]], b: [[a, 0.61]], "github:gone/x#9": []},
                    "updated_at": NEW,
                }
            ],
        )
    migrate.upgrade(engine)
    with session_factory(engine)() as s:
        assert related.load(s, [a, b, c]) == {
            a: [{"key": b, "similarity": 0.61}, {"key": c, "similarity": 0.2}],
            b: [{"key": a, "similarity": 0.61}],
        }
    with engine.connect() as conn:
        names = conn.execute(sa.text("SELECT name FROM cursors")).scalars().all()
    assert "duplicates:related" not in names
    engine.dispose()
