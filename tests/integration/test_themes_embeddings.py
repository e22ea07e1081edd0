"""Offline themes that also place items by an OpenAI-compatible server's embeddings (fake)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fakes.corpus import PROBLEMS, batch
from tests.fakes.openai import FakeOpenAI
from tests.integration.test_duplicates import DAY1
from triage.analysis.duplicates import run as dups
from triage.analysis.themes import run as themes
from triage.config import Config, Secrets
from triage.context import Context
from triage.db import migrate, store
from triage.db.engine import transaction
from triage.db.schema import ThemeItem
from triage.errors import ConfigError
from triage.sources.base import ItemIn

# One problem in other word forms each time: words alone share almost nothing, the stems
# (and so the fake server's vectors, like a real model's) say it is one problem.
RESTATED = [
    ("Uploads crashing with archives", "Zipped folders."),
    ("Uploading crashed: archived folder", "Happens each time."),
    ("Upload crashes on archiving", "Zipping fails."),
]
OTHERS = [
    ("Dark mode colours are unreadable", "The sidebar text is grey on grey."),
    ("Login page loops forever", "After the password the page reloads endlessly."),
    ("Timezone shown wrongly in reports", "Dates appear one hour early in summer."),
    ("Add keyboard shortcut for search", "Ctrl+K would open the search box."),
    ("Docs miss the proxy settings", "Nothing explains how to set a proxy."),
    ("Spell checker ignores German", "Only English words are underlined."),
    ("Printing cuts the last column", "The table is cropped on A4 paper."),
    ("Notifications arrive twice", "Every mention sends two emails."),
]


def items() -> list[ItemIn]:
    template = batch(PROBLEMS[:1], 1, DAY1, seed=3)[0]
    out = []
    for n, (title, body) in enumerate(RESTATED + OTHERS, start=1):
        when = template.created_at + timedelta(minutes=n)
        out.append(
            template.model_copy(
                update={
                    "key": f"github:acme/app#{n}",
                    "number": n,
                    "title": title,
                    "body": body,
                    "created_at": when,
                    "updated_at": when,
                }
            )
        )
    return out


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(embedding_models=("embeddinggemma:latest",)) as server:
        yield server


def make(tmp_path: Path, fake: FakeOpenAI, embedding_provider: str, model: str) -> Context:
    openai = {"base_url": fake.base_url + "/v1", "model": "gemma3", "max_retries": 0}
    if model:
        openai["embedding_model"] = model
    config = Config.model_validate(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'triage.db'}"},
            "llm": {"provider": "openai", "openai": openai},
            "themes": {"embedding_provider": embedding_provider, "min_cluster_size": 3},
        }
    )
    ctx = Context(config, Secrets())
    migrate.upgrade(ctx.engine)
    with transaction(ctx.sessions) as s:
        store.upsert_items(s, items())
    return ctx


def grouped(ctx: Context) -> set[frozenset[str]]:
    with ctx.sessions() as s:
        rows = list(s.scalars(select(ThemeItem)))
    by_theme: dict[int, set[str]] = {}
    for row in rows:
        by_theme.setdefault(row.theme_id, set()).add(row.item_key)
    return {frozenset(keys) for keys in by_theme.values()}


RESTATED_KEYS = frozenset(f"github:acme/app#{n}" for n in (1, 2, 3))


def test_words_alone_miss_a_problem_told_in_other_word_forms(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    ctx = make(tmp_path, fake, "", "embeddinggemma")
    try:
        themes.run_for_context(ctx, DAY1 - timedelta(days=1), provider="local")
        assert RESTATED_KEYS not in grouped(ctx)
    finally:
        ctx.close()
    assert fake.embedded == []


def test_embeddings_join_it_and_duplicates_reuse_the_vectors(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    ctx = make(tmp_path, fake, "openai", "embeddinggemma")
    try:
        run = themes.run_for_context(ctx, DAY1 - timedelta(days=1), provider="local")
        assert run.embedded == len(RESTATED + OTHERS) and fake.embedded == [run.embedded]
        assert grouped(ctx) == {RESTATED_KEYS}  # the unrelated reports stay out
        again = dups.run_for_context(ctx)  # same text, same model: nothing embedded again
        assert again.embedded == 0 and again.reused == run.embedded
        assert fake.embedded == [run.embedded]
    finally:
        ctx.close()


def test_a_provider_without_embeddings_is_a_config_error_naming_the_setting(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    ctx = make(tmp_path, fake, "openai", "")
    try:
        with pytest.raises(ConfigError, match=r"set \[llm.openai\] embedding_model"):
            themes.run_for_context(ctx, DAY1 - timedelta(days=1), provider="local")
    finally:
        ctx.close()
