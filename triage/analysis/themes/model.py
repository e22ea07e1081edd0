"""What every themer shares: the items it sees, the themes that exist, the plan it returns.

The offline and model-backed themers both import this module, never the dispatcher (run.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from triage.analysis.item_refs import ItemRef
from triage.errors import TriageError
from triage.providers.calls import CallRecord


@dataclass(frozen=True)
class ThemeDoc:
    """An item as a themer sees it."""

    key: str
    source: str
    title: str
    summary: str
    body: str
    content_hash: str
    created_at: datetime


@dataclass
class ExistingTheme:
    """A live (not merged) theme with its most recent members (their vectors place it)."""

    id: int
    title: str
    description: str
    terms: list[str]
    created_at: datetime
    members: list[ItemRef] = field(default_factory=list)
    size: int = 0


@dataclass
class NewTheme:
    ref: str  # the plan's own name for it until it has an id
    title: str
    description: str
    terms: list[str] = field(default_factory=list)


@dataclass
class ThemePlan:
    """What a themer decided: item -> theme id (int) or new theme ref (str); merges (from, into)."""

    assign: dict[str, int | str] = field(default_factory=dict)
    new: list[NewTheme] = field(default_factory=list)
    merges: list[tuple[int, int]] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    rejected: int = 0  # answers naming a theme that does not exist
    failed: set[str] = field(default_factory=set)  # keys a failed call left unplanned
    exhausted: TriageError | None = None  # the token budget stopped the run early


Themer = Callable[[list[ThemeDoc], list[ExistingTheme]], ThemePlan]
