"""The Digest model: what one digest says, independent of where it is delivered."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class CountRow(BaseModel):
    name: str
    current: int
    previous: int

    @property
    def delta(self) -> int:
        return self.current - self.previous


class ItemRef(BaseModel):
    key: str
    source: str
    scope: str
    title: str
    url: str
    state: str
    created_at: datetime
    category: str | None = None
    priority: str | None = None
    summary: str | None = None


class ThemeEntry(BaseModel):
    id: int
    title: str
    description: str = ""
    current: int
    previous: int
    by_source: dict[str, int] = Field(default_factory=dict)
    trend: Literal["new", "growing", "shrinking", "steady"]
    examples: list[ItemRef] = Field(default_factory=list)

    @property
    def delta(self) -> int:
        return self.current - self.previous


class DuplicateEntry(BaseModel):
    a: ItemRef
    b: ItemRef
    confidence: float
    reason: str
    similarity: float = 0.0
    judged: bool = True  # a model judged the pair; else it is only alike in wording


class Listing(BaseModel):
    """Up to MAX_LIST entries plus the full count, so a renderer can say what it left out."""

    total: int = 0
    items: list[ItemRef] = Field(default_factory=list)

    @property
    def more(self) -> int:
        return self.total - len(self.items)


class Spend(BaseModel):
    calls: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class ThemeVolume(BaseModel):
    id: int
    title: str
    counts: list[int]  # one per entry of Volume.window_ends, oldest first


class Volume(BaseModel):
    window_ends: list[datetime]
    themes: list[ThemeVolume]


class Digest(BaseModel):
    window: str
    start: datetime
    end: datetime
    previous_start: datetime
    generated_at: datetime
    total: CountRow
    by_source: list[CountRow]
    by_category: list[CountRow]
    themes: list[ThemeEntry]
    active_themes: int
    high_priority: Listing
    duplicates: list[DuplicateEntry]
    duplicates_total: int
    unanswered: Listing
    unanswered_after_hours: float
    spend: Spend
    volume: Volume
    coverage: str = ""  # "since the previous digest (...)" when the window was stretched back
    empty_hint: str = ""  # an empty window: how many items are stored and the --window to use

    @property
    def duplicates_more(self) -> int:
        return self.duplicates_total - len(self.duplicates)
