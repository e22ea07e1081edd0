"""Themes through an OpenAI-compatible server (e.g. Gemma on Ollama), against the fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

import tests.fakes.themes_model  # noqa: F401  (registers the themes responder)
from tests.fakes.corpus import PROBLEMS, batch
from tests.fakes.gemini import DEFAULT_KEY, FakeGemini
from tests.fakes.openai import FakeOpenAI
from triage.analysis.duplicates import run as dups
from triage.analysis.themes import run as th
from triage.config import Config, Secrets
from triage.context import Context
from triage.db import migrate, store
from triage.db.engine import transaction
from triage.db.schema import LLMCall, ThemeItem
from triage.errors import ConfigError


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    with FakeOpenAI() as fake:
        config = Config.model_validate(
            {
                "database": {"url": f"sqlite:///{tmp_path / 'triage.db'}"},
                "llm": {
                    "provider": "openai",
                    "openai": {"base_url": fake.base_url + "/v1", "model": "gemma3"},
                },
            }
        )
        c = Context(config, Secrets())
        migrate.upgrade(c.engine)
        yield c
        c.close()


def test_themes_with_an_openai_compatible_model(ctx: Context) -> None:
    items = batch(PROBLEMS[:3], 4, datetime(2025, 3, 3), seed=9)
    with transaction(ctx.sessions) as s:
        store.upsert_items(s, items)
    result = th.run_for_context(ctx, datetime(2000, 1, 1))
    assert result.assigned == len(items) and result.new_themes == 3 and result.calls == 1
    with ctx.sessions() as s:
        assert len(set(s.scalars(select(ThemeItem.theme_id)))) == 3
        call = s.scalars(select(LLMCall)).one()
        assert (call.provider, call.purpose, call.model) == ("openai", "themes", "gemma3")


def test_duplicates_need_embeddings_the_server_does_not_offer(ctx: Context) -> None:
    with pytest.raises(ConfigError, match="--provider local"):
        dups.run_for_context(ctx)


def test_duplicates_with_openai_never_reach_for_gemini_embeddings(
    ctx: Context, fake_gemini: FakeGemini
) -> None:
    """A Gemini key and endpoint beside an openai provider: still no Gemini embedder is built."""
    llm = ctx.config.llm.model_copy(
        update={
            "gemini": ctx.config.llm.gemini.model_copy(update={"base_url": fake_gemini.base_url})
        }
    )
    keyed = Context(
        ctx.config.model_copy(update={"llm": llm}),
        Secrets(gemini_api_key=SecretStr(DEFAULT_KEY)),
    )
    keyed.__dict__["engine"] = ctx.engine
    with transaction(keyed.sessions) as s:
        store.upsert_items(s, batch(PROBLEMS[:2], 3, datetime(2025, 3, 3), seed=4))
    with pytest.raises(ConfigError, match="no embeddings"):
        dups.run_for_context(keyed, "openai")
    assert fake_gemini.requests == []
