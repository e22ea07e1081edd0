"""The local provider on a real database: per-source, pooled and rule answers, retraining."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from tests.analysis_support import context
from tests.local_corpus import items
from triage.analysis import classify
from triage.config import Config
from triage.context import Context
from triage.db import migrate, store
from triage.db.engine import make_engine, session_factory, transaction
from triage.db.schema import Analysis, LLMCall, LocalModel
from triage.providers.base import ItemText, Taxonomy
from triage.providers.local.provider import LocalProvider
from triage.providers.local.store import POOLED, DatabaseModels, build
from triage.sources.base import ItemIn


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Any attempt to open a network connection fails the test loudly."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any, *args: Any) -> Any:
        attempts.append(address)
        raise OSError(f"network disabled in this test (tried {address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts
    assert attempts == [], f"the local provider tried to connect: {attempts}"


@pytest.fixture
def any_engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine on SQLite and, when configured, PostgreSQL."""
    eng = make_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def local_ctx(engine: Engine, **local: Any) -> Context:
    config = Config.model_validate({"llm": {"provider": "local", "local": local}})
    return context(config, engine, key=None)


def seed(engine: Engine, batch: list[ItemIn]) -> None:
    with transaction(session_factory(engine)) as s:
        store.upsert_items(s, batch)


def texts(batch: list[ItemIn]) -> list[ItemText]:
    return [ItemText(i.key, i.title, i.body, i.source, i.scope, i.content_hash) for i in batch]


def fresh(n: int, scope: str = "acme/app", seed_: int = 99) -> list[ItemIn]:
    return items(n, scope, seed=seed_, labelled=False, start=10_000)


def test_trained_per_source_with_network_disabled(engine: Engine, no_network: list[Any]) -> None:
    seed(engine, items(20))  # 60 labelled issues of acme/app
    ctx = local_ctx(engine)
    provider = build(ctx)
    taxonomy = Taxonomy.from_config(ctx.config)
    new = fresh(4)
    outcome = provider.classify(texts(new), taxonomy, [])
    assert len(outcome.results) == 12 and not outcome.failed
    truth = {i.key: t for i, t in zip(new, ["bug", "feature", "question"] * 4, strict=True)}
    right = sum(r.category == truth[r.key] for r in outcome.results)
    assert right >= 11
    for r in outcome.results:
        assert r.note is None  # the source's own model answered
        assert r.labels == list(taxonomy.label_map[r.category][:1])
        assert 0.0 <= r.confidence <= 1.0
        assert r.summary.startswith(next(i.title for i in new if i.key == r.key))
    (call,) = outcome.calls
    assert (call.provider, call.model, call.input_tokens, call.cost_usd) == (
        "local",
        provider.model,
        0,
        0.0,
    )
    with ctx.sessions() as s:
        stored = s.scalars(select(LocalModel)).all()
    assert [(m.scope, m.train_size) for m in stored] == [("github:acme/app", 60)]


def test_labels_outside_the_allowlist_never_survive(engine: Engine) -> None:
    seed(engine, items(10))
    ctx = local_ctx(engine)
    # the map names a label the allowlist does not hold: validation drops it
    taxonomy = Taxonomy(
        categories={"bug": "b", "feature": "f"},
        labels=("bug",),
        priorities=("low", "medium", "high"),
        label_map={"bug": ("kind/crash",), "feature": ("enhancement",)},
    )
    outcome = build(ctx).classify(texts(fresh(3)), taxonomy, [])
    assert outcome.results  # bug and feature answers
    for r in outcome.results:
        assert r.labels == []
        assert r.dropped and r.dropped[0] in ("kind/crash", "enhancement")
    # "question" is not in this taxonomy: those items are not answered, never stored wrongly
    assert all(r.category in taxonomy.categories for r in outcome.results)
    assert len(outcome.failed) == 3


def test_a_source_with_few_labels_uses_the_pooled_model_and_says_so(engine: Engine) -> None:
    seed(engine, items(15, "big/one") + items(2, "small/two", seed=5, start=500))
    ctx = local_ctx(engine, min_labels_per_category=10)
    outcome = build(ctx).classify(
        texts(fresh(2, "small/two")), Taxonomy.from_config(ctx.config), []
    )
    assert len(outcome.results) == 6
    for r in outcome.results:
        assert r.note is not None and r.note.startswith("pooled model:")
        assert "github:small/two" in r.note
    with ctx.sessions() as s:
        assert s.scalars(select(LocalModel.scope)).all() == [POOLED]


def test_no_labels_anywhere_falls_back_to_rules_and_says_so(engine: Engine) -> None:
    seed(engine, fresh(3))
    ctx = local_ctx(engine)
    batch = [
        ItemText(
            "github:a/b#1", "Crash on start", "### Steps to reproduce\n1. run", "github", "a/b"
        ),
        ItemText("github:a/b#2", "How do I set the proxy?", "I cannot find it.", "github", "a/b"),
    ]
    outcome = build(ctx).classify(batch, Taxonomy.from_config(ctx.config), [])
    got = {r.key: r for r in outcome.results}
    assert got["github:a/b#1"].category == "bug"
    assert got["github:a/b#2"].category == "question"
    for r in outcome.results:
        assert r.note is not None and r.note.startswith("rules:")
        assert r.confidence < ctx.config.labels.min_confidence


def test_retrained_only_when_the_labelled_set_grew_enough(any_engine: Engine) -> None:
    engine = any_engine
    seed(engine, items(20))  # 60 labelled
    ctx = local_ctx(engine, retrain_growth=0.2)

    def model_rows() -> list[tuple[int, int]]:
        with ctx.sessions() as s:
            return [(i, n) for i, n in s.execute(select(LocalModel.id, LocalModel.train_size))]

    first = DatabaseModels(ctx)
    first.choose("github:acme/app")
    assert first.trained_now == ["github:acme/app"]
    (before,) = model_rows()

    seed(engine, items(3, seed=1, start=1000))  # +9 labelled: 15% growth, reuse the model
    again = DatabaseModels(ctx)
    assert again.choose("github:acme/app").model is not None
    assert again.trained_now == []
    assert model_rows() == [before]

    seed(engine, items(2, seed=2, start=2000))  # +6 more: 25% over 60, retrain
    third = DatabaseModels(ctx)
    third.choose("github:acme/app")
    assert third.trained_now == ["github:acme/app"]
    (after,) = model_rows()  # the old model is replaced, not kept beside the new one
    assert after[0] != before[0] and after[1] == 75


def test_analyze_run_stores_local_analyses_with_their_calls(engine: Engine) -> None:
    seed(engine, items(10) + fresh(2))
    ctx = local_ctx(engine)
    provider = build(ctx)
    assert isinstance(provider, LocalProvider)
    new_keys = {i.key for i in fresh(2)}
    stats = classify.run(ctx, provider, keys=new_keys)
    assert stats.analysed == 6 and not stats.failed
    assert stats.input_tokens == 0 and stats.cost_usd == 0.0
    with ctx.sessions() as s:
        rows = s.scalars(select(Analysis).where(Analysis.item_key.in_(new_keys))).all()
        calls = s.scalar(
            select(func.count()).select_from(LLMCall).where(LLMCall.provider == "local")
        )
    assert len(rows) == 6
    assert {r.provider for r in rows} == {"local"}
    assert all(r.llm_call_id is not None for r in rows)
    assert calls == 1


def test_doctor_says_what_answers_for_each_source(engine: Engine) -> None:
    from triage.providers.local.store import doctor_check

    ctx = local_ctx(engine)
    assert doctor_check(ctx).startswith("no labelled items yet")
    seed(engine, items(12) + items(1, "small/two", seed=3, start=700))
    line = doctor_check(ctx)
    assert line.startswith("39 labelled items in 2 sources; own models for 1 (github:acme/app)")
    assert "pooled model for the rest" in line
    other = Config.model_validate({"llm": {"provider": "gemini"}})
    assert doctor_check(context(other, engine)).startswith("skipped")


def test_a_spent_token_budget_does_not_hold_back_the_local_model(engine: Engine) -> None:
    """Gemini used up today's tokens; the free local model still analyses, and says who answered."""
    seed(engine, items(15, "big/one") + fresh(2, "small/two"))
    config = Config.model_validate(
        {"llm": {"provider": "local", "daily_token_budget": 1000, "local": {}}}
    )
    ctx = context(config, engine, key=None)
    with transaction(ctx.sessions) as s:
        s.add(
            LLMCall(
                provider="gemini",
                model="m",
                input_tokens=5000,
                output_tokens=10,
                created_at=store.utcnow(),
            )
        )
    new_keys = {i.key for i in fresh(2, "small/two")}
    stats = classify.run(ctx, build(ctx), keys=new_keys)
    assert stats.exhausted is None and not stats.failed
    assert stats.analysed == len(new_keys)
    with ctx.sessions() as s:
        notes = s.scalars(select(Analysis.reason).where(Analysis.item_key.in_(new_keys))).all()
    assert notes and all(n and n.startswith("pooled model:") for n in notes)
