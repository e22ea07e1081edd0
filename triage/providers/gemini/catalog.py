"""The Gemini model catalog (models.toml): prices, limits, thinking style and shutdown dates.

Costs, cache decisions, packing and the thinking setting sent all read the configured model's
entry here, so a new model or price is one edit to models.toml.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any

from google.genai import types

from triage.config import GeminiConfig
from triage.errors import ConfigError

WARN_BEFORE = timedelta(days=30)  # shutdown this close (or past) is worth a warning
# A token budget for each level on a budget-style (2.5) model.
LEVEL_BUDGETS = {"low": 1024, "medium": 8192, "high": 24_576}
LEVEL_ORDER = ("minimal", "low", "medium", "high")


@dataclass(frozen=True)
class Price:
    start: date
    input: float
    cached_input: float
    output: float
    batch: float  # share of the interactive price billed in Batch Mode


@dataclass(frozen=True)
class ModelInfo:
    name: str
    status: str  # ga | preview | deprecated | retired
    context_window: int
    max_output: int
    min_cache_tokens: int
    thinking: str  # level | budget | none
    levels: tuple[str, ...] = ()
    default_level: str | None = None
    budget_min: int = 0
    budget_max: int = 0
    budget_off: bool = False
    shutdown: date | None = None
    replacement: str | None = None
    prices: tuple[Price, ...] = field(default_factory=tuple)

    def price_on(self, day: date) -> Price | None:
        """The price list in force on `day` (the latest that started by then)."""
        started = [p for p in self.prices if p.start <= day]
        return max(started, key=lambda p: p.start) if started else None


@dataclass(frozen=True)
class Catalog:
    default: str
    models: dict[str, ModelInfo]

    def get(self, name: str) -> ModelInfo | None:
        return self.models.get(name.removeprefix("models/"))


def _model(name: str, raw: dict[str, Any]) -> ModelInfo:
    prices = tuple(
        Price(p["from"], p["input"], p["cached_input"], p["output"], p["batch"])
        for p in raw.get("prices", [])
    )
    return ModelInfo(
        name=name,
        status=raw["status"],
        context_window=raw["context_window"],
        max_output=raw["max_output"],
        min_cache_tokens=raw["min_cache_tokens"],
        thinking=raw["thinking"],
        levels=tuple(raw.get("levels", ())),
        default_level=raw.get("default_level"),
        budget_min=raw.get("budget_min", 0),
        budget_max=raw.get("budget_max", 0),
        budget_off=raw.get("budget_off", False),
        shutdown=raw.get("shutdown"),
        replacement=raw.get("replacement"),
        prices=prices,
    )


def parse(text: str) -> Catalog:
    """A catalog from TOML text (ValueError/KeyError when an entry is malformed)."""
    data = tomllib.loads(text)
    models = {name: _model(name, raw) for name, raw in data["models"].items()}
    if data["default"] not in models:
        raise ValueError(f"default model {data['default']!r} is not in the catalog")
    return Catalog(data["default"], models)


@cache
def load() -> Catalog:
    """The catalog shipped in the package."""
    return parse(resources.files(__package__).joinpath("models.toml").read_text("utf-8"))


def thinking_config(info: ModelInfo | None, setting: str | int) -> types.ThinkingConfig | None:
    """What to send for `[llm.gemini] thinking` to this model; a one-line error if it refuses.

    "off" is the least the model allows: budget 0 where thinking can be off (2.5 Flash), else
    its lowest level (Gemini 3 has no off: "low" on 3.8 Flash, "minimal" on Flash-Lite).
    A model not in the catalog gets nothing: it thinks at its own default.
    """
    if info is None or info.thinking == "none":
        return None
    key = "[llm.gemini] thinking"
    if info.thinking == "level":
        if isinstance(setting, int):
            raise ConfigError(
                f"{key} = {setting}: {info.name} sets thinking by level"
                f" ({', '.join(info.levels)} or off), not by a token budget"
            )
        level = _lowest(info.levels) if setting == "off" else setting
        if level not in info.levels:
            raise ConfigError(
                f"{key} = {setting!r} is not supported by {info.name}"
                f" (it accepts {', '.join(info.levels)} or off)"
            )
        return types.ThinkingConfig(thinking_level=types.ThinkingLevel(level.upper()))
    if setting == "off":
        budget = 0 if info.budget_off else info.budget_min
    elif isinstance(setting, str):
        budget = min(LEVEL_BUDGETS[setting], info.budget_max)
    else:
        budget = setting
        low = 0 if info.budget_off else info.budget_min
        if not (low <= budget <= info.budget_max) or (0 < budget < info.budget_min):
            off = "0 (off) or " if info.budget_off else ""
            raise ConfigError(
                f"{key} = {budget}: {info.name} takes a budget of"
                f" {off}{info.budget_min}..{info.budget_max} tokens"
            )
    return types.ThinkingConfig(thinking_budget=budget)


def _lowest(levels: tuple[str, ...]) -> str:
    return min(levels, key=LEVEL_ORDER.index)


def shutdown_notice(info: ModelInfo | None, model: str, today: date) -> str | None:
    """A warning when the model is retired, rerouted, or shuts down within 30 days."""
    if info is None:
        return None
    instead = f"; use {info.replacement} instead ([llm.gemini] model)" if info.replacement else ""
    if info.status == "retired":
        when = f" on {info.shutdown}" if info.shutdown else ""
        return f"Gemini model {model} was shut down{when}{instead}"
    if info.status == "deprecated":
        return f"Gemini model {model} is deprecated and answered by another model{instead}"
    if info.shutdown is not None and info.shutdown - today <= WARN_BEFORE:
        verb = "was shut down" if info.shutdown <= today else "shuts down"
        return f"Gemini model {model} {verb} on {info.shutdown}{instead}"
    return None


def retired_error(info: ModelInfo | None, model: str) -> ConfigError | None:
    """The one-line error for a 404 from a model the catalog knows as gone."""
    if info is None or info.status not in ("retired", "deprecated"):
        return None
    when = f" on {info.shutdown}" if info.shutdown else ""
    instead = (
        f'; set [llm.gemini] model = "{info.replacement}" (its replacement)'
        if info.replacement
        else "; choose another [llm.gemini] model"
    )
    return ConfigError(f"Gemini model {model} was shut down{when} (404 NOT_FOUND){instead}")


@dataclass(frozen=True)
class Prices:
    """The prices in effect for one run: config overrides, else the catalog's for today."""

    input: float
    cached_input: float
    output: float
    batch: float


def prices_for(cfg: GeminiConfig, info: ModelInfo | None, today: date) -> Prices:
    """`[llm.gemini]` price keys win when set (non-zero); otherwise the catalog's."""
    listed = info.price_on(today) if info else None
    return Prices(
        input=cfg.input_price or (listed.input if listed else 0.0),
        cached_input=cfg.cached_input_price or (listed.cached_input if listed else 0.0),
        output=cfg.output_price or (listed.output if listed else 0.0),
        batch=listed.batch if listed else 0.5,
    )


def min_cache_tokens(cfg: GeminiConfig, info: ModelInfo | None) -> int:
    """`[llm.gemini] min_cache_tokens` when set, else the model's minimum (4,096 if unknown)."""
    if cfg.min_cache_tokens:
        return cfg.min_cache_tokens
    return info.min_cache_tokens if info else 4096
