"""What every duplicate finder shares: the items, candidate pairs, links and judgements.

The offline and model-backed back-ends import this module, never the dispatcher (run.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from triage.errors import TriageError
from triage.providers.calls import CallRecord


@dataclass(frozen=True)
class DupDoc:
    key: str
    source: str
    title: str
    summary: str
    body: str
    content_hash: str


@dataclass
class Candidate:
    a: DupDoc
    b: DupDoc
    similarity: float
    shared: list[str] = field(default_factory=list)  # distinctive terms both use (offline)
    mutual: bool = False  # each is the other's clearly nearest neighbour (offline)


# The model name stored with pairs no model judged; the digest calls them similar reports.
OFFLINE_MODEL = "tfidf"


@dataclass
class Link:
    key_a: str
    key_b: str
    similarity: float
    confidence: float
    reason: str


@dataclass
class Judged:
    links: list[Link] = field(default_factory=list)  # every judged pair, kept or not
    calls: list[CallRecord] = field(default_factory=list)
    failed: int = 0  # pairs the judge could not answer (retried next run)
    exhausted: TriageError | None = None  # the token budget stopped judging early


Judge = Callable[[list[Candidate]], Judged]
