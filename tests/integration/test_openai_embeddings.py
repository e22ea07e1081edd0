"""Duplicates through an OpenAI-compatible server's embeddings and chat model (fake server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

import tests.fakes.themes_model  # noqa: F401  (registers the duplicates responder)
from tests.fakes.openai import FakeOpenAI, fake_vector
from tests.integration.test_duplicates import corpus
from triage import export
from triage.analysis.duplicates import run as dups
from triage.config import Config, Secrets
from triage.context import Context
from triage.db import migrate, store
from triage.db.engine import transaction
from triage.db.schema import Duplicate, Embedding, LLMCall
from triage.errors import ConfigError
from triage.providers.openai.embedding import embedding_check


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(embedding_models=("embeddinggemma:latest",)) as server:
        yield server


def make(tmp_path: Path, fake: FakeOpenAI, embedding_model: str) -> Context:
    openai = {"base_url": fake.base_url + "/v1", "model": "gemma3", "max_retries": 0}
    if embedding_model:
        openai["embedding_model"] = embedding_model
    config = Config.model_validate(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'triage.db'}"},
            "llm": {"provider": "openai", "openai": openai},
        }
    )
    ctx = Context(config, Secrets())
    migrate.upgrade(ctx.engine)
    return ctx


@pytest.fixture
def ctx(tmp_path: Path, fake: FakeOpenAI) -> Iterator[Context]:
    c = make(tmp_path, fake, "embeddinggemma")
    yield c
    c.close()


def test_fake_vectors_put_restatements_close_and_other_problems_far() -> None:
    a = fake_vector("Streaming response stops after the first chunk")
    b = fake_vector("the stream stops: streamed responses stop after one chunk")
    c = fake_vector("Rate limit exceeded on the free tier")
    cos = lambda x, y: sum(p * q for p, q in zip(x, y, strict=True))  # noqa: E731
    assert cos(a, b) > 0.5 > 0.2 > cos(a, c)


def test_duplicates_embed_once_and_the_chat_model_judges(ctx: Context, fake: FakeOpenAI) -> None:
    items, original, copy = corpus()
    with transaction(ctx.sessions) as s:
        store.upsert_items(s, items)
    first = dups.run_for_context(ctx)
    assert first.embedded == len(items) and fake.embedded == [len(items)]
    with ctx.sessions() as s:
        stored = list(s.scalars(select(Embedding)))
        assert {e.model for e in stored} == {"embeddinggemma"} and len(stored) == len(items)
        pair = tuple(sorted([original.key, copy.key]))
        link = s.scalars(
            select(Duplicate).where(Duplicate.key_a == pair[0], Duplicate.key_b == pair[1])
        ).one()
        assert (link.provider, link.model) == ("openai", "gemma3")
        purposes = {(c.provider, c.model, c.purpose) for c in s.scalars(select(LLMCall))}
        assert ("openai", "embeddinggemma", "embed") in purposes
        assert ("openai", "gemma3", "duplicates") in purposes
    again = dups.run_for_context(ctx)
    assert again.embedded == 0 and again.reused == len(items) and fake.embedded == [len(items)]
    # Every open item's three nearest neighbours are exported, whatever their similarity.
    records = {r["key"]: r for r in export.iter_records(ctx.sessions)}
    near = records[original.key]["related"]
    assert len(near) == 3 and near[0]["key"] == copy.key
    assert near[0]["similarity"] >= near[1]["similarity"] >= near[2]["similarity"]
    assert json.dumps(near)  # plain JSON


def test_without_an_embedding_model_duplicates_say_which_setting_to_set(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    c = make(tmp_path, fake, "")
    try:
        with pytest.raises(ConfigError, match=r"set \[llm.openai\] embedding_model"):
            dups.run_for_context(c)
        assert "skipped" in embedding_check(c)
    finally:
        c.close()
    assert fake.embedded == []


def test_doctor_checks_the_embedding_model(tmp_path: Path, fake: FakeOpenAI) -> None:
    good = make(tmp_path, fake, "embeddinggemma")
    try:
        assert embedding_check(good) == (
            "embedding model 'embeddinggemma' (256 dimensions) for duplicates"
        )
    finally:
        good.close()
    bad = make(tmp_path, fake, "embedinggemma")
    try:
        with pytest.raises(ConfigError, match=r"embeddinggemma.*embedding_model"):
            embedding_check(bad)
    finally:
        bad.close()
