"""Gemini as it is today, through google-genai against the fake: thinking, finish reasons,
retired and rerouted models, calls in flight, budgets under concurrency, nameless batch jobs."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from structlog.testing import capture_logs

from tests.analysis_support import MIXED, context, gemini_config, item, seed
from tests.fakes.gemini import DEFAULT_KEY, FakeGemini
from tests.fakes.gemini_models import TEXT_METHODS
from triage.analysis import batch, classify
from triage.config import Config
from triage.db.engine import session_factory
from triage.db.schema import BatchJob
from triage.errors import ConfigError, ProviderError
from triage.providers.base import Example, ItemText, Taxonomy
from triage.providers.gemini.provider import GeminiProvider

EXPECTED = {"k0": "bug", "k1": "feature", "k2": "question", "k3": "docs"}


@pytest.fixture
def fake(fake_gemini: FakeGemini) -> FakeGemini:
    return fake_gemini


def provider(fake: FakeGemini, **llm: object) -> GeminiProvider:
    return GeminiProvider(gemini_config(fake, **llm), DEFAULT_KEY, sleep=lambda _s: None)


def texts(n: int = 1) -> list[ItemText]:
    return [ItemText(f"k{i}", t, b) for i, (t, b) in enumerate(MIXED * n)][: 4 * n]


TAX = Taxonomy.from_config(Config())


@pytest.mark.parametrize(
    ("model", "thinking", "sent"),
    [
        ("gemini-3.8-flash", "low", {"thinkingLevel": "LOW"}),
        ("gemini-3.8-flash", "off", {"thinkingLevel": "LOW"}),
        ("gemini-3.5-flash-lite", "off", {"thinkingLevel": "MINIMAL"}),
        ("gemini-2.5-flash", "off", {"thinkingBudget": 0}),
    ],
)
def test_thinking_is_sent_so_the_model_accepts_it_and_its_tokens_are_counted(
    fake: FakeGemini, model: str, thinking: str, sent: dict[str, object]
) -> None:
    fake.models["gemini-2.5-flash"] = TEXT_METHODS  # still served, for this test
    p = provider(fake, gemini={"model": model, "thinking": thinking})
    out = p.classify(texts(), TAX, [])
    assert {r.key: r.category for r in out.results} == EXPECTED
    assert fake.thinking_seen == [sent]
    [call] = out.calls
    assert call.thinking_tokens == fake.usage[0].get("thoughtsTokenCount", 0)
    assert call.output_tokens == fake.usage[0]["candidatesTokenCount"] + call.thinking_tokens


def test_more_thinking_costs_more_output_tokens(fake: FakeGemini) -> None:
    spent = {}
    for level in ("low", "medium", "high"):
        fake.reset()
        [call] = provider(fake, gemini={"thinking": level}).classify(texts(), TAX, []).calls
        spent[level] = call.thinking_tokens
    assert 0 < spent["low"] < spent["medium"] < spent["high"]


def test_a_budget_on_a_level_model_fails_before_any_call(fake: FakeGemini) -> None:
    with pytest.raises(ConfigError, match=r"\[llm.gemini\] thinking = 2048"):
        provider(fake, gemini={"thinking": 2048})
    assert fake.requests == []


def test_finish_reason_other_is_retried_not_sent_to_review(fake: FakeGemini) -> None:
    fake.finish_other_next = 1
    out = provider(fake).classify(texts(), TAX, [])
    assert {r.key: r.category for r in out.results} == EXPECTED and not out.reviews
    assert [c.outcome for c in out.calls] == ["no_answer", "ok"]


def test_an_answer_that_stays_empty_leaves_items_pending_saying_what_came_back(
    fake: FakeGemini,
) -> None:
    fake.empty_content_next = 1000
    out = provider(fake, concurrency=1).classify(texts(), TAX, [])
    assert not out.results and not out.reviews and set(out.failed) == set(EXPECTED)
    assert out.stop is not None and "empty content" in out.stop
    assert "invalid JSON" not in out.stop


def test_a_persistent_other_leaves_single_items_pending_with_the_finish_message(
    fake: FakeGemini,
) -> None:
    fake.finish_other_next = 1000
    out = provider(fake, concurrency=1).classify(texts()[:1], TAX, [])
    assert not out.reviews
    # The finishMessage is read from the raw answer (google-genai's parsed one drops it).
    reason = out.failed["k0"]
    assert "finishReason OTHER" in reason
    assert "Model failed to generate content due to internal error." in reason


def test_a_retired_model_is_one_error_naming_its_replacement_without_a_cache_warning(
    fake: FakeGemini,
) -> None:
    fake.min_cache_tokens = 300
    p = provider(fake, gemini={"model": "gemini-2.5-flash", "min_cache_tokens": 300})
    shots = [Example(f"Crash {i}", "details " * 100, "bug", ("bug",)) for i in range(3)]
    with capture_logs() as logs, pytest.raises(ConfigError) as err:
        p.classify(texts(), TAX, shots)
    assert "gemini-2.5-flash was shut down" in str(err.value)
    assert 'model = "gemini-3.5-flash-lite"' in str(err.value)
    assert not [e for e in logs if "cache" in e["event"]]


def test_a_rerouted_model_is_said_once(fake: FakeGemini) -> None:
    p = provider(fake, gemini={"model": "gemini-3.7-flash"}, max_items_per_call=1)
    with capture_logs() as logs:
        out = p.classify(texts(), TAX, [])
    assert len(out.results) == 4
    rerouted = [e for e in logs if "another model" in e["event"]]
    assert len(rerouted) == 1 and rerouted[0]["answered_by"] == "gemini-3.8-flash"
    notice = p.model_notice(for_run=True)
    assert notice is not None and "gemini-3.8-flash" in notice


def test_calls_run_concurrently_up_to_the_setting(fake: FakeGemini) -> None:
    fake.latency = 5.0  # 0.05 s for a one-item call: long enough to overlap
    out = provider(fake, max_items_per_call=1, concurrency=3).classify(texts(3), TAX, [])
    assert len(out.results) == 12
    assert fake.max_in_flight == 3


def test_analyze_with_concurrency_keeps_the_run_budget(fake: FakeGemini, engine: Engine) -> None:
    seed(engine, [item(i + 1, f"App crashes {i}", "Traceback " * 40) for i in range(40)])
    fake.latency = 2.0
    config = gemini_config(fake, max_items_per_call=4, concurrency=4, run_token_budget=3000)
    ctx = context(config, engine)
    p = GeminiProvider(config, DEFAULT_KEY)
    stats = classify.run(ctx, p)
    assert stats.exhausted is not None and stats.analysed < 40
    used = stats.input_tokens + stats.output_tokens
    per_call = used / max(stats.calls, 1)
    assert used <= 3000 + 4 * per_call  # overshoot at most the calls in flight
    assert stats.analysed + len(stats.failed) == 40  # nothing lost: the rest is pending


def test_a_batch_job_created_without_a_name_is_recorded_failed_and_its_items_freed(
    fake: FakeGemini, engine: Engine
) -> None:
    seed(engine, [item(i + 1, t, b) for i, (t, b) in enumerate(MIXED)])
    fake.batch_nameless = True
    ctx = context(gemini_config(fake), engine)
    p = GeminiProvider(ctx.config, DEFAULT_KEY)
    with pytest.raises(ProviderError, match="without a name"):
        batch.submit(ctx, p)
    with session_factory(engine)() as s:
        [job] = s.scalars(select(BatchJob)).all()
        assert job.state == "NOT_CREATED" and job.completed_at is not None
        assert len(classify.pending_items(s, p)) == 4  # free for the next run
    assert batch.poll(ctx, p).collected == []  # and no poll trips over it
