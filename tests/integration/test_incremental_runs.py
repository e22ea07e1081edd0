"""Duplicates and themes at scale: a run looks only at what is new or changed, in bounded parts."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.fakes.corpus import PROBLEMS, batch
from tests.integration.test_duplicates import add, corpus, links
from tests.integration.test_themes_offline import DAY1, EPOCH, assignments, problem_of
from triage import export
from triage.analysis.duplicates import run as dups
from triage.analysis.themes import local as themes_local
from triage.analysis.themes import run as th
from triage.context import Context
from triage.db import related as stored
from triage.db import store
from triage.db.engine import transaction
from triage.db.schema import Item


@pytest.fixture
def sessions(local_ctx: Context) -> sessionmaker[Session]:
    return local_ctx.sessions


def related(ctx: Context) -> dict[str, list[str]]:
    """What the export shows as each item's nearest neighbours."""
    return {r["key"]: [n["key"] for n in r["related"]] for r in export.iter_records(ctx.sessions)}


def naming(ctx: Context, key: str) -> set[str]:
    """Items whose kept neighbours (more than the export shows) include `key`."""
    with ctx.sessions() as s:
        kept = stored.lists(s, [k for k, _ in s.execute(select(Item.key, Item.state))])
    return {k for k, near in kept.items() if key in {o for o, _ in near}}


def test_a_new_report_alone_looks_for_neighbours_and_the_old_one_takes_it_in(
    local_ctx: Context,
) -> None:
    items, original, copy = corpus()
    add(local_ctx, [i for i in items if i.key != copy.key])
    first = dups.run_for_context(local_ctx)
    assert first.searched == len(items) - 1
    assert copy.key not in related(local_ctx)[original.key]
    add(local_ctx, [copy])
    second = dups.run_for_context(local_ctx)
    assert second.searched == 1  # only the new report; the other 20 keep their neighbours
    pair = tuple(sorted([original.key, copy.key]))
    assert pair in {(x.key_a, x.key_b) for x in links(local_ctx)}
    # The original did not search again, yet its nearest neighbour is now the cross-post.
    assert related(local_ctx)[original.key][0] == copy.key


def test_a_closed_report_leaves_every_list_that_named_it(local_ctx: Context) -> None:
    items, original, copy = corpus()
    add(local_ctx, items)
    dups.run_for_context(local_ctx)
    near_copy = naming(local_ctx, copy.key)
    assert original.key in near_copy
    later = copy.updated_at + timedelta(days=1)
    add(local_ctx, [copy.model_copy(update={"state": "closed", "updated_at": later})])
    again = dups.run_for_context(local_ctx)
    # Those that named it look again; the rest are left alone.
    assert again.searched == len(near_copy) < len(items) - 1
    now = related(local_ctx)
    assert all(copy.key not in near for near in now.values())
    assert now[copy.key] == [] and now[original.key]


def test_an_edited_report_looks_again_and_so_do_those_near_it(local_ctx: Context) -> None:
    items, original, _ = corpus()
    add(local_ctx, items)
    dups.run_for_context(local_ctx)
    near_original = naming(local_ctx, original.key)
    edited = original.model_copy(
        update={
            "body": original.body + " Update: it also happens offline.",
            "updated_at": original.updated_at + timedelta(days=1),
        }
    )
    add(local_ctx, [edited])
    again = dups.run_for_context(local_ctx)
    assert again.searched == len(near_original | {original.key}) < len(items)


def chunked(sessions: sessionmaker[Session], size: int) -> th.ThemeRun:
    offline = themes_local.OfflineThemer(sessions, 2)
    return th.run_themes(
        sessions, EPOCH, offline, "local", themes_local.MEMBERS_PER_THEME, chunk_size=size
    )


def test_themes_planned_a_few_items_at_a_time_still_group_each_problem(
    sessions: sessionmaker[Session],
) -> None:
    per = 6
    items = batch(PROBLEMS[:3], per, DAY1, seed=4)
    with transaction(sessions) as s:
        store.upsert_items(s, items)
    result = chunked(sessions, size=5)  # four parts: later ones join the themes earlier found
    assert result.pending == len(items) and result.assigned >= len(items) - 2
    truth = problem_of(items, PROBLEMS[:3], per)
    assigned = assignments(sessions)
    for problem in {p.name for p in PROBLEMS[:3]}:
        themes = Counter(assigned[k] for k, p in truth.items() if p == problem and k in assigned)
        theme, size = themes.most_common(1)[0]
        assert size >= per - 1, f"{problem} split over {dict(themes)}"
        others = {truth[k] for k, t in assigned.items() if t == theme}
        assert others == {problem}
