"""Themes through the real google-genai client against the fake Gemini server."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import tests.fakes.themes_model as fake_themes
from tests.analysis_support import make_ctx
from tests.fakes.corpus import PROBLEMS, batch
from tests.fakes.gemini import FakeGemini
from triage.analysis.themes import run as th
from triage.context import Context
from triage.db import store
from triage.db.engine import transaction
from triage.db.schema import LLMCall, Theme, ThemeItem
from triage.errors import BudgetExhausted
from triage.sources.base import ItemIn

EPOCH = datetime(2000, 1, 1)
DAY1 = datetime(2025, 3, 3)


@pytest.fixture
def fake(fake_gemini: FakeGemini) -> FakeGemini:
    """The shared fake Gemini (tests/conftest.py), fresh for each test."""
    return fake_gemini


@pytest.fixture
def ctx(tmp_path: Path, fake: FakeGemini) -> Iterator[Context]:
    c = make_ctx(tmp_path, fake)
    yield c
    c.close()


def add(ctx: Context, items: Sequence[ItemIn]) -> None:
    with transaction(ctx.sessions) as s:
        store.upsert_items(s, items)


def assignments(ctx: Context) -> dict[str, int]:
    with ctx.sessions() as s:
        return dict(s.execute(select(ThemeItem.item_key, ThemeItem.theme_id)).all())


def truth_of(items: Sequence[ItemIn], per: int, offset: int = 0) -> dict[str, str]:
    return {item.key: PROBLEMS[offset + i // per].name for i, item in enumerate(items)}


def theme_calls(ctx: Context) -> list[LLMCall]:
    with ctx.sessions() as s:
        return list(s.scalars(select(LLMCall).where(LLMCall.purpose == "themes")))


def test_one_call_groups_both_sources_and_is_accounted(ctx: Context, fake: FakeGemini) -> None:
    items = batch(PROBLEMS[:4], 6, DAY1, seed=1)
    add(ctx, items)
    result = th.run_for_context(ctx, EPOCH, "gemini")
    assert fake.generate_calls == 1 and result.calls == 1
    truth = truth_of(items, 6)
    assigned = assignments(ctx)
    assert len(assigned) == len(items)
    by_theme: dict[int, Counter[str]] = {}
    for key, tid in assigned.items():
        by_theme.setdefault(tid, Counter())[truth[key]] += 1
    assert len(by_theme) == 4 and all(len(c) == 1 for c in by_theme.values())
    sources = {i.key: i.source for i in items}
    for tid in by_theme:
        assert {sources[k] for k, t in assigned.items() if t == tid} == {"github", "stackexchange"}
    calls = theme_calls(ctx)
    assert len(calls) == 1 and calls[0].provider == "gemini" and calls[0].items == len(items)
    assert calls[0].input_tokens == fake.usage[-1]["promptTokenCount"] > 0
    assert calls[0].prompt_version == "themes-1"
    with ctx.sessions() as s:
        assert {t.provider for t in s.scalars(select(Theme))} == {"gemini"}


def test_ids_are_stable_and_new_reports_join_existing_themes(
    ctx: Context, fake: FakeGemini
) -> None:
    first = batch(PROBLEMS[:3], 4, DAY1, seed=2)
    add(ctx, first)
    th.run_for_context(ctx, EPOCH, "gemini")
    before = assignments(ctx)
    truth = truth_of(first, 4)
    ids = {truth[k]: tid for k, tid in before.items()}
    for day in (1, 2):
        new = batch(PROBLEMS[:3], 2, DAY1 + timedelta(days=day), seed=day, first_number=day * 100)
        add(ctx, new)
        result = th.run_for_context(ctx, EPOCH, "gemini")
        assert result.pending == len(new) and result.new_themes == 0
        now = assignments(ctx)
        assert {k: now[k] for k in before} == before
        for key, problem in truth_of(new, 2).items():
            assert now[key] == ids[problem]
        before = now
        prompt = fake_themes.switches(fake).prompts[-1]
        assert all(f"<<<THEME T{tid}>>>" in prompt for tid in ids.values())
        # Items already themed are not sent again.
        assert prompt.count("<<<ITEM ") == len(new)


def test_answers_naming_unknown_themes_are_rejected(ctx: Context, fake: FakeGemini) -> None:
    items = batch(PROBLEMS[:2], 4, DAY1, seed=3)
    add(ctx, items)
    fake_themes.switches(fake).unknown_theme_next = 2
    result = th.run_for_context(ctx, EPOCH, "gemini")
    assert result.rejected == 2
    with ctx.sessions() as s:
        assert s.get(Theme, 999999) is None
    assert len(assignments(ctx)) == len(items) - 2
    assert result.left_over == 2


def test_split_into_several_calls_only_past_the_token_budget(
    tmp_path: Path, fake: FakeGemini
) -> None:
    # Two problems first, two more a day later: later calls meet new problems too.
    items = batch(PROBLEMS[:2], 10, DAY1, seed=4) + batch(
        PROBLEMS[2:4], 10, DAY1 + timedelta(days=1), seed=5, first_number=100
    )
    (tmp_path / "big").mkdir()
    big = make_ctx(tmp_path / "big", fake)
    add(big, items)
    th.run_for_context(big, EPOCH, "gemini")
    assert fake.generate_calls == 1
    one_call_themes = len(set(assignments(big).values()))
    big.close()

    small = make_ctx(tmp_path, fake, max_prompt_tokens=1000)
    add(small, items)
    result = th.run_for_context(small, EPOCH, "gemini")
    assert result.calls == fake.generate_calls - 1 >= 3
    bodies = [json.loads(r.body) for r in fake.requests_to(r":generateContent$", "POST")[1:]]
    assert all(b["contents"][0]["parts"][0]["text"].count("<<<ITEM") < 40 for b in bodies)
    sizes = [u["promptTokenCount"] for u in fake.usage[1:]]
    assert max(sizes) <= 1000, sizes
    # New themes proposed by an earlier call are offered to later calls, not founded again.
    prompts = fake_themes.switches(fake).prompts[1:]
    assert "<<<THEME R1>>>" in prompts[-1]
    assigned = assignments(small)
    assert len(set(assigned.values())) == one_call_themes == 4
    truth = {**truth_of(items[:20], 10), **truth_of(items[20:], 10, offset=2)}
    per_theme: dict[int, set[str]] = {}
    for key, tid in assigned.items():
        per_theme.setdefault(tid, set()).add(truth[key])
    assert all(len(problems) == 1 for problems in per_theme.values()), per_theme
    small.close()


def test_failed_call_leaves_items_for_the_next_run(ctx: Context, fake: FakeGemini) -> None:
    items = batch(PROBLEMS[:2], 3, DAY1, seed=5)
    add(ctx, items)
    fake.fail(500, times=1)
    result = th.run_for_context(ctx, EPOCH, "gemini")
    assert result.failed == len(items) and result.assigned == 0
    calls = theme_calls(ctx)
    assert calls and calls[0].outcome == "error"
    again = th.run_for_context(ctx, EPOCH, "gemini")
    assert not again.skipped and again.assigned == len(items)


def test_a_model_that_never_answers_usable_json_is_given_up_on_quickly(
    ctx: Context, fake: FakeGemini
) -> None:
    items = batch(PROBLEMS[:4], 25, DAY1, seed=8)
    add(ctx, items)
    fake.invalid_json_next = 10_000
    result = th.run_for_context(ctx, EPOCH, "gemini")
    assert result.failed == len(items) and result.assigned == 0
    assert fake.generate_calls <= 10  # halving down to pairs of items would take 127 calls


def test_model_merge_of_two_existing_themes_is_recorded(ctx: Context, fake: FakeGemini) -> None:
    items = batch([PROBLEMS[1]], 4, DAY1, seed=6)
    add(ctx, items)
    t0 = DAY1 + timedelta(days=1)
    with transaction(ctx.sessions) as s:
        a = Theme(
            title="Quota exceeded rate limit",
            description="Reports like: 429 RESOURCE_EXHAUSTED quota exceeded rate limit",
            created_at=t0,
            updated_at=t0,
        )
        b = Theme(
            title="Rate limit quota exceeded",
            description="Reports like: quota exceeded rate limit 429 RESOURCE_EXHAUSTED",
            created_at=t0,
            updated_at=t0,
        )
        s.add_all([a, b])
        s.flush()
        for n, item in enumerate(items[:2]):
            s.add(
                ThemeItem(
                    item_key=item.key,
                    theme_id=(a, b)[n].id,
                    content_hash=item.content_hash,
                    assigned_at=t0,
                )
            )
    result = th.run_for_context(ctx, EPOCH, "gemini")
    assert result.merged == 1
    with ctx.sessions() as s:
        younger = s.get(Theme, b.id)
        assert younger is not None and younger.merged_into == a.id and younger.merged_at
    assert set(assignments(ctx).values()) == {a.id}


def test_token_budget_stops_cleanly_and_the_next_run_continues(
    tmp_path: Path, fake: FakeGemini
) -> None:
    items = batch(PROBLEMS[:4], 10, DAY1, seed=7)
    tight = make_ctx(tmp_path, fake, max_prompt_tokens=1000, daily_token_budget=2500)
    add(tight, items)
    with pytest.raises(BudgetExhausted, match="daily token budget reached"):
        th.run_for_context(tight, EPOCH, "gemini")
    done = assignments(tight)
    assert 0 < len(done) < len(items)
    assert sum(c.input_tokens + c.output_tokens for c in theme_calls(tight)) <= 2500
    tight.close()

    roomy = make_ctx(tmp_path, fake, max_prompt_tokens=1000)
    result = th.run_for_context(roomy, EPOCH, "gemini")
    assert not result.skipped and result.pending == len(items) - len(done)
    assert len(assignments(roomy)) == len(items)
    assert {k: v for k, v in assignments(roomy).items() if k in done} == done
    roomy.close()


def test_split_calls_run_in_parallel_waves_without_founding_a_theme_twice(
    tmp_path: Path, fake: FakeGemini
) -> None:
    # Two problems first, two more a day later: the later calls of one wave all meet the new
    # problems, and each proposes them without seeing the others' answers.
    items = batch(PROBLEMS[:2], 10, DAY1, seed=4) + batch(
        PROBLEMS[2:4], 10, DAY1 + timedelta(days=1), seed=5, first_number=100
    )
    fake.latency = 1.0  # a 13-item answer takes 0.13 s: long enough for calls to overlap
    ctx = make_ctx(tmp_path, fake, max_prompt_tokens=1000, concurrency=4)
    add(ctx, items)
    result = th.run_for_context(ctx, EPOCH, "gemini")
    assert result.calls == fake.generate_calls >= 3
    assert fake.max_in_flight > 1
    assigned = assignments(ctx)
    assert len(assigned) == len(items) and result.failed == 0
    truth = {**truth_of(items[:20], 10), **truth_of(items[20:], 10, offset=2)}
    per_theme: dict[int, set[str]] = {}
    for key, tid in assigned.items():
        per_theme.setdefault(tid, set()).add(truth[key])
    # One theme per problem: none founded twice by two calls of a wave, none mixing problems.
    assert sorted(per_theme.values(), key=sorted) == sorted(
        ({p.name} for p in PROBLEMS[:4]), key=sorted
    )
    with ctx.sessions() as s:
        assert len(list(s.scalars(select(Theme)))) == 4
    ctx.close()
