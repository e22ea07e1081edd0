"""Duplicates offline (TF-IDF) and with Gemini embeddings and judgements (fake server)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

import tests.fakes.themes_model  # noqa: F401  (registers the duplicates responder)
from tests.analysis_support import make_ctx
from tests.fakes.corpus import PROBLEMS, batch
from tests.fakes.gemini import FakeGemini
from triage.analysis.duplicates import run as dups
from triage.context import Context
from triage.db import store
from triage.db.engine import transaction
from triage.db.schema import Duplicate, Embedding, Item, LLMCall
from triage.errors import BudgetExhausted, ConfigError
from triage.sources.base import ItemIn, stackexchange_key

DAY1 = datetime(2025, 3, 3)


def cross_post(item: ItemIn, number: int) -> ItemIn:
    """The same problem asked again on Stack Overflow by the same person, lightly edited."""
    return item.model_copy(
        update={
            "key": stackexchange_key("stackoverflow", number),
            "source": "stackexchange",
            "scope": "stackoverflow",
            "number": number,
            "url": f"https://stackoverflow.com/questions/{number}",
            "title": f"How to solve: {item.title}?",
            "body": item.body + " Also posted on GitHub.",
            "created_at": item.created_at + timedelta(hours=2),
            "updated_at": item.created_at + timedelta(hours=2),
        }
    )


def problem_of(items: Sequence[ItemIn]) -> dict[str, str]:
    """Which made-up problem each corpus item reports (batch writes them problem by problem)."""
    return {item.key: PROBLEMS[n // 4].name for n, item in enumerate(items[:20])}


def same_problem(link: Duplicate, truth: dict[str, str], copy: ItemIn, original: ItemIn) -> bool:
    problem = {**truth, copy.key: truth[original.key]}
    return problem[link.key_a] == problem[link.key_b]


def corpus() -> tuple[list[ItemIn], ItemIn, ItemIn]:
    items = batch(PROBLEMS[:5], 4, DAY1, seed=11)
    original = next(i for i in items if i.source == "github")
    copy = cross_post(original, 90001)
    return [*items, copy], original, copy


def add(ctx: Context, items: Sequence[ItemIn]) -> None:
    with transaction(ctx.sessions) as s:
        store.upsert_items(s, items)


def links(ctx: Context) -> list[Duplicate]:
    with ctx.sessions() as s:
        return list(s.scalars(select(Duplicate).order_by(Duplicate.id)))


@pytest.fixture
def fake(fake_gemini: FakeGemini) -> FakeGemini:
    """The shared fake Gemini (tests/conftest.py), fresh for each test."""
    return fake_gemini


@pytest.fixture
def gemini_ctx(tmp_path: Path, fake: FakeGemini) -> Iterator[Context]:
    ctx = make_ctx(tmp_path, fake)
    yield ctx
    ctx.close()


# -- offline -------------------------------------------------------------------------------
def test_offline_finds_a_cross_posted_question_and_says_why(local_ctx: Context) -> None:
    items, original, copy = corpus()
    add(local_ctx, items)
    result = dups.run_for_context(local_ctx)
    stored = links(local_ctx)
    assert result.linked == len(stored) >= 1
    # The cross-post is the surest pair; any other pair is two reports of one problem.
    link = max(stored, key=lambda x: (x.confidence, x.similarity))
    assert (link.key_a, link.key_b) == tuple(sorted([original.key, copy.key]))
    assert link.confidence >= 0.7 and link.provider == "local" and link.model == "tfidf"
    truth = problem_of(items)
    assert all(same_problem(x, truth, copy, original) for x in stored)
    assert link.reason.startswith("both mention \u201c")
    # The reason names terms of this problem, not filler.
    problem = next(
        p for p in PROBLEMS if any(ph.lower() in original.title.lower() for ph in p.phrases)
    )
    assert any(word in link.reason.lower() for ph in problem.phrases for word in ph.lower().split())


def test_rerunning_adds_nothing_and_closes_nothing(local_ctx: Context) -> None:
    items, _, _ = corpus()
    add(local_ctx, items)
    first = dups.run_for_context(local_ctx)
    again = dups.run_for_context(local_ctx)
    assert first.linked >= 1 and first.searched == len(items)
    # Nothing changed: no item looks for neighbours again, nothing is linked twice.
    assert again.searched == 0 and again.linked == 0
    assert len(links(local_ctx)) == first.linked
    with local_ctx.sessions() as s:
        assert set(s.scalars(select(Item.state))) == {"open"}


def test_closed_items_are_not_candidates(local_ctx: Context) -> None:
    items, _, copy = corpus()
    closed = copy.model_copy(update={"state": "closed"})
    add(local_ctx, [*items[:-1], closed])
    result = dups.run_for_context(local_ctx)
    assert result.open_items == len(items) - 1
    assert all(copy.key not in (x.key_a, x.key_b) for x in links(local_ctx))


# -- Gemini --------------------------------------------------------------------------------
def embed_requests(fake: FakeGemini) -> list[int]:
    """Texts per batchEmbedContents request, in order."""
    return [len(json.loads(r.body)["requests"]) for r in fake.requests_to(r":batchEmbedContents$")]


def test_gemini_embeds_once_judges_in_batches_and_links_across_sources(
    gemini_ctx: Context, fake: FakeGemini
) -> None:
    items, original, copy = corpus()
    add(gemini_ctx, items)
    result = dups.run_for_context(gemini_ctx)
    assert embed_requests(fake) == [len(items)]
    assert result.embedded == len(items) and result.reused == 0
    assert result.candidates > 1 and fake.generate_calls == 1  # every pair in one call
    assert result.linked >= 1
    pair = tuple(sorted([original.key, copy.key]))
    found = {(d.key_a, d.key_b): d for d in links(gemini_ctx)}
    assert pair in found
    link = found[pair]
    assert link.provider == "gemini" and link.model == gemini_ctx.config.llm.gemini.model
    assert link.reason.startswith("both report") and link.confidence >= 0.7
    assert all(d.confidence >= 0.7 for d in found.values())
    with gemini_ctx.sessions() as s:
        purposes = dict(
            s.execute(select(LLMCall.purpose, func.count()).group_by(LLMCall.purpose)).all()
        )
        assert purposes == {"embed": 1, "duplicates": 1}
        vectors = s.scalars(select(Embedding)).all()
        assert {v.model for v in vectors} == {"gemini-embedding-001"}
        assert len(vectors[0].vector) == 768 * 4


def test_unchanged_text_is_never_embedded_or_judged_again(
    gemini_ctx: Context, fake: FakeGemini
) -> None:
    items, _, _ = corpus()
    add(gemini_ctx, items)
    dups.run_for_context(gemini_ctx)
    calls_before = fake.generate_calls
    again = dups.run_for_context(gemini_ctx)
    assert embed_requests(fake) == [len(items)]  # no new request
    assert again.reused == len(items) and again.embedded == 0
    assert fake.generate_calls == calls_before and again.linked == 0

    # A comment (new updated_at, same text) changes nothing either.
    bumped = items[3].model_copy(update={"updated_at": items[3].updated_at + timedelta(days=1)})
    add(gemini_ctx, [bumped])
    dups.run_for_context(gemini_ctx)
    assert embed_requests(fake) == [len(items)]

    # An edited body is embedded again, alone.
    edited = bumped.model_copy(
        update={
            "body": bumped.body + " Edit: still broken.",
            "updated_at": bumped.updated_at + timedelta(days=1),
        }
    )
    add(gemini_ctx, [edited])
    third = dups.run_for_context(gemini_ctx)
    assert embed_requests(fake) == [len(items), 1]
    assert third.embedded == 1


def test_more_than_a_hundred_texts_are_sent_in_requests_of_at_most_100(
    gemini_ctx: Context, fake: FakeGemini
) -> None:
    items = batch(PROBLEMS, 15, DAY1, seed=12)  # 120 open items
    add(gemini_ctx, items)
    dups.run_for_context(gemini_ctx)
    assert embed_requests(fake) == [100, 20]


def test_a_failed_judgement_is_retried_next_run(gemini_ctx: Context, fake: FakeGemini) -> None:
    items, _, _ = corpus()
    add(gemini_ctx, items)
    fake.fail(500, times=1)
    first = dups.run_for_context(gemini_ctx)
    assert first.failed == first.candidates > 0 and first.linked == 0
    second = dups.run_for_context(gemini_ctx)
    assert second.failed == 0 and second.linked >= 1
    assert embed_requests(fake) == [len(items)]


def test_judging_stops_at_the_token_budget_and_resumes(tmp_path: Path, fake: FakeGemini) -> None:
    items = batch(PROBLEMS, 10, DAY1, seed=13)
    # Room for the embeddings and about one batch of judgements of 20 pairs.
    tight = make_ctx(tmp_path, fake, max_items_per_call=20, daily_token_budget=12_000)
    add(tight, items)
    with pytest.raises(BudgetExhausted, match="daily token budget reached"):
        dups.run_for_context(tight)
    with tight.sessions() as s:
        judged = s.scalar(
            select(func.count()).select_from(LLMCall).where(LLMCall.purpose == "duplicates")
        )
    assert judged and judged >= 1
    assert embed_requests(fake) == [80]
    tight.close()

    roomy = make_ctx(tmp_path, fake, max_items_per_call=20)
    result = dups.run_for_context(roomy)
    assert result.embedded == 0 and result.failed == 0 and result.judged > 0
    roomy.close()


def test_doctor_checks_the_embedding_model(tmp_path: Path, fake: FakeGemini) -> None:
    from triage.providers.gemini.doctor import embedding_check as doctor_check

    ok = make_ctx(tmp_path, fake)
    assert doctor_check(ok) == "embedding model gemini-embedding-001 for duplicates"
    ok.close()
    (tmp_path / "bad").mkdir()
    bad = make_ctx(
        tmp_path / "bad",
        fake,
        gemini={"base_url": fake.base_url, "embedding_model": "text-embed-9"},
    )
    with pytest.raises(ConfigError, match="unknown Gemini embedding model 'text-embed-9'"):
        doctor_check(bad)
    bad.close()
