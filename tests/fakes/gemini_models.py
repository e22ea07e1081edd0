"""What the fake Gemini knows about models: today's list, thinking rules, thought tokens.

As the real API: retired models are not listed and answer 404 NOT_FOUND; a deprecated model
answers from its successor (`modelVersion` says which); Gemini 3 takes `thinkingLevel` (each
model its own levels), 2.5 takes `thinkingBudget`, and both at once is a 400. Thought-token
counts are the fake's own: enough to see each setting's effect, not Google's figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TEXT_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
EMBED_METHODS = ["embedContent", "countTextTokens", "asyncBatchEmbedContent"]


@dataclass(frozen=True)
class FakeModel:
    levels: tuple[str, ...] = ()  # Gemini 3: thinkingLevel values accepted
    default_level: str = "MEDIUM"
    budget: tuple[int, int] | None = None  # Gemini 2.5: (min, max); min 0 means it can be off
    routed_to: str | None = None  # deprecated: answered by this model


FLASH = ("LOW", "MEDIUM", "HIGH")
LITE = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
MODELS: dict[str, FakeModel] = {
    "gemini-3.8-flash": FakeModel(FLASH),
    "gemini-3.7-flash": FakeModel(FLASH, routed_to="gemini-3.8-flash"),
    "gemini-3.6-flash": FakeModel(LITE),
    "gemini-3.5-flash-lite": FakeModel(LITE, "MINIMAL"),
    "gemini-3.1-flash-lite": FakeModel(LITE, "MINIMAL"),
    "gemini-3.1-pro-preview": FakeModel(FLASH, "HIGH"),
    # not listed by default (shut down); a test may list them again
    "gemini-2.5-flash": FakeModel(budget=(0, 24_576)),
    "gemini-2.5-pro": FakeModel(budget=(128, 32_768)),
}
DEFAULT_MODELS: dict[str, list[str]] = {
    "gemini-3.8-flash": TEXT_METHODS,
    "gemini-3.7-flash": TEXT_METHODS,
    "gemini-3.6-flash": TEXT_METHODS,
    "gemini-3.5-flash-lite": TEXT_METHODS,
    "gemini-3.1-flash-lite": TEXT_METHODS,
    "gemini-3.1-pro-preview": TEXT_METHODS,
    "gemini-embedding-001": EMBED_METHODS,
    "gemini-embedding-2": EMBED_METHODS,
}
# Thought tokens per call and per item at each level (a budget thinks up to its size).
THOUGHTS = {"MINIMAL": (8, 0), "LOW": (64, 4), "MEDIUM": (256, 24), "HIGH": (1024, 96)}


def normal(thinking: dict[str, Any] | None) -> dict[str, Any]:
    """camelCase keys: the API takes either spelling (google-genai sends snake_case here)."""
    names = {"thinking_level": "thinkingLevel", "thinking_budget": "thinkingBudget"}
    names["include_thoughts"] = "includeThoughts"
    return {names.get(k, k): v for k, v in (thinking or {}).items()}


def thinking_problem(model: str, thinking: dict[str, Any] | None) -> str | None:
    """The 400 message the real API gives for this thinkingConfig, or None when accepted."""
    spec = MODELS.get(model, FakeModel(FLASH))
    thinking = normal(thinking)
    level, budget = thinking.get("thinkingLevel"), thinking.get("thinkingBudget")
    if level is not None and budget is not None:
        return "You can only set only one of thinking budget and thinking level."
    if level is not None:
        if spec.budget is not None:
            return "Thinking level is not supported for this model."
        if str(level).upper() not in spec.levels:
            return f"Thinking level is unsupported: THINKING_LEVEL_{str(level).upper()}"
    if budget is not None and spec.budget is not None:
        low, high = spec.budget
        if int(budget) == 0 and low > 0:
            return "Budget 0 is invalid. This model only works in thinking mode."
        if (int(budget) != -1 and not (0 <= int(budget) <= high)) or 0 < int(budget) < low:
            return f"The thinking budget ({budget}) is invalid."
    return None


def thoughts(model: str, thinking: dict[str, Any] | None, items: int) -> int:
    """thoughtsTokenCount for one answer of `items` items."""
    spec = MODELS.get(model, FakeModel(FLASH))
    thinking = normal(thinking)
    if spec.budget is not None:
        budget = int(thinking.get("thinkingBudget", -1))
        base, per = THOUGHTS["MEDIUM"]
        wanted = base + per * items
        return wanted if budget == -1 else min(budget, wanted)
    level = str(thinking.get("thinkingLevel") or spec.default_level).upper()
    base, per = THOUGHTS.get(level, THOUGHTS["MEDIUM"])
    return base + per * items
