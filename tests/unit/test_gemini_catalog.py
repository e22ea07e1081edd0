"""The model catalog (models.toml): one file to update, read the same way everywhere."""

from __future__ import annotations

import threading
from datetime import date
from importlib import resources

import pytest

from triage.analysis.shots import choose
from triage.config import Config, GeminiConfig
from triage.errors import ConfigError
from triage.providers.base import Example
from triage.providers.gemini import catalog
from triage.providers.limiter import RateLimiter, SimulatedClock


def test_every_entry_is_complete_and_cited() -> None:
    cat = catalog.load()
    assert cat.default == Config().llm.gemini.model  # the config default is the catalog's
    assert cat.models[cat.default].status == "ga"
    text = resources.files("triage.providers.gemini").joinpath("models.toml").read_text()
    data = __import__("tomllib").loads(text)
    for name, info in cat.models.items():
        assert data["models"][name]["source"], name  # every fact says where it came from
        assert info.thinking in ("level", "budget", "none"), name
        if info.thinking == "level":
            assert info.levels and info.default_level in info.levels, name
        if info.status != "retired":
            assert info.prices and all(p.input > 0 and p.output > 0 for p in info.prices), name
        if info.status in ("deprecated", "retired"):
            assert info.replacement in cat.models, name


def test_a_new_model_is_one_entry_in_the_file() -> None:
    text = resources.files("triage.providers.gemini").joinpath("models.toml").read_text()
    text += """
[models."gemini-9-flash"]
status = "ga"
context_window = 2_000_000
max_output = 65_536
min_cache_tokens = 8192
thinking = "level"
levels = ["low", "high"]
default_level = "low"
source = ["https://example.invalid/changelog"]

[[models."gemini-9-flash".prices]]
from = 2027-03-01
input = 1.0
cached_input = 0.1
output = 4.0
batch = 0.5
source = "https://example.invalid/pricing"
"""
    info = catalog.parse(text).models["gemini-9-flash"]
    cfg = GeminiConfig(model="gemini-9-flash")
    assert catalog.prices_for(cfg, info, date(2027, 3, 2)).output == 4.0
    assert catalog.min_cache_tokens(cfg, info) == 8192
    assert catalog.thinking_config(info, "off").thinking_level.value == "LOW"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"\[llm.gemini\] thinking = 'medium'.*gemini-9-flash"):
        catalog.thinking_config(info, "medium")


def test_prices_follow_their_dates_and_config_keys_override() -> None:
    info = catalog.load().get("gemini-3.8-flash")
    assert info is not None
    cfg = GeminiConfig()
    assert catalog.prices_for(cfg, info, date(2026, 12, 31)).input == 0.75
    assert catalog.prices_for(cfg, info, date(2027, 1, 1)).input == 1.50
    mine = GeminiConfig(input_price=0.5)
    assert catalog.prices_for(mine, info, date(2027, 1, 1)).input == 0.5


@pytest.mark.parametrize(
    ("model", "setting", "level", "budget"),
    [
        ("gemini-3.8-flash", "off", "LOW", None),  # no off on 3.x: its lowest level
        ("gemini-3.8-flash", "high", "HIGH", None),
        ("gemini-3.5-flash-lite", "off", "MINIMAL", None),
        ("gemini-2.5-flash", "off", None, 0),  # 2.5 Flash can turn thinking off
        ("gemini-2.5-pro", "off", None, 128),  # 2.5 Pro cannot: its least budget
        ("gemini-2.5-flash", 2048, None, 2048),
    ],
)
def test_thinking_is_sent_as_each_model_expects(
    model: str, setting: str | int, level: str | None, budget: int | None
) -> None:
    sent = catalog.thinking_config(catalog.load().get(model), setting)
    assert sent is not None
    assert (sent.thinking_level.value if sent.thinking_level else None) == level
    assert sent.thinking_budget == budget


def test_a_setting_the_model_refuses_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"\[llm.gemini\] thinking = 1024.*by level"):
        catalog.thinking_config(catalog.load().get("gemini-3.8-flash"), 1024)
    with pytest.raises(
        ConfigError, match=r"\[llm.gemini\] thinking = 30000.*0 \(off\) or 0\.\.24576"
    ):
        catalog.thinking_config(catalog.load().get("gemini-2.5-flash"), 30_000)


def test_shutdown_notices() -> None:
    cat = catalog.load()
    lite = cat.get("gemini-3.1-flash-lite")
    assert catalog.shutdown_notice(lite, "gemini-3.1-flash-lite", date(2026, 12, 2)) is None
    soon = catalog.shutdown_notice(lite, "gemini-3.1-flash-lite", date(2027, 4, 20))
    assert soon and "2027-05-07" in soon and "gemini-3.5-flash-lite" in soon
    routed = catalog.shutdown_notice(cat.get("gemini-3.7-flash"), "gemini-3.7-flash", date.today())
    assert routed and "gemini-3.8-flash" in routed


def test_shots_cover_every_category_and_label_newest_first_once() -> None:
    pool = [Example(f"crash {i}", "x" * 400, "bug", ("bug",)) for i in range(50)]
    pool.insert(3, Example("crash 1", "x" * 400, "bug", ("bug",)))  # a duplicate of the 2nd
    pool.append(Example("add dark mode", "y" * 400, "feature", ("enhancement",)))
    pool.append(Example("segfault on arm", "z" * 400, "bug", ("bug", "crash")))
    floor = choose(pool, ["bug", "feature"], ["bug", "crash", "enhancement"], 2, 0)
    assert [e.title for e in floor] == ["crash 0", "crash 1", "add dark mode"]
    long = choose(pool, ["bug", "feature"], ["bug", "crash", "enhancement"], 2, 2000)
    titles = [e.title for e in long]
    assert "segfault on arm" in titles and "add dark mode" in titles  # every label shown
    assert titles.count("crash 1") == 1 and titles[:3] == ["crash 0", "crash 1", "crash 2"]
    assert 5 < len(titles) < 20  # filled up to about 2,000 tokens


def test_the_limiter_keeps_requests_per_minute_and_a_pause_holds_every_worker() -> None:
    waits: list[float] = []
    clock = SimulatedClock(waits.append)
    limiter = RateLimiter(rpm=2, tpm=0, clock=clock.now, sleep=clock.sleep)
    for _ in range(5):
        limiter.acquire()
    assert clock.now() >= 120.0  # five requests at two a minute: two full minutes of waiting
    limiter.pause(30.0)
    start = clock.now()
    done: list[float] = []
    workers = [
        threading.Thread(target=lambda: (limiter.acquire(), done.append(clock.now())))
        for _ in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(done) == 2 and all(t >= start + 30.0 for t in done)


def test_the_limiter_keeps_tokens_per_minute() -> None:
    clock = SimulatedClock(lambda _s: None)
    limiter = RateLimiter(rpm=0, tpm=1000, clock=clock.now, sleep=clock.sleep)
    limiter.acquire(600)
    limiter.acquire(600)  # would make 1,200 in a minute: waits for the first to age out
    assert clock.now() >= 60.0
