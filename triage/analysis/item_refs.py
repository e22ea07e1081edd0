"""What duplicates and themes know of an item before reading its text (no numpy here: the CLI
imports it at start-up)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# (stage, done, total): a command draws it as a progress bar.
Progress = Callable[[str, int, int], None]


class Ref(Protocol):
    """What says whether an item's stored vector is for its current text."""

    @property
    def key(self) -> str: ...
    @property
    def content_hash(self) -> str: ...


@dataclass(frozen=True)
class ItemRef:
    """An item's identity and the hash of its current text."""

    key: str
    source: str
    content_hash: str
    created_at: datetime


@dataclass(frozen=True)
class ItemText:
    """An item's text as vectors and judges see it."""

    key: str
    source: str
    title: str
    summary: str
    body: str  # as written
    stripped: str  # without its source's template
    content_hash: str
    created_at: datetime
