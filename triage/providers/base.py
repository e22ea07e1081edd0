"""The provider contract: what a provider can do (capability Protocols) and what it answers.

Analysis steps never know which provider answered: they ask for a capability (`Classifier`,
`JsonModel`, `Embedder`; `BatchJobs` in batch_jobs.py) and take the offline path when the
provider has none. Every classifier returns raw per-item answers through `validate_answers`, so
the allowlist and id checks are the same for all of them. Providers get a `ProviderDeps` (the
Context satisfies it), never the Context itself, so they stay below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from triage.config import Config, Secrets
from triage.providers.calls import CallRecord, Reply


@dataclass(frozen=True)
class Taxonomy:
    """What a model may answer: categories (with descriptions), labels, priorities."""

    categories: dict[str, str]
    labels: tuple[str, ...]  # the allowlist ([labels] map values)
    priorities: tuple[str, ...]
    label_map: dict[str, tuple[str, ...]]

    @classmethod
    def from_config(cls, config: Config) -> Taxonomy:
        lm = config.labels.map
        return cls(
            categories=dict(config.taxonomy.categories),
            labels=tuple(sorted(config.labels.allowlist())),
            priorities=tuple(config.taxonomy.priorities),
            label_map={k: tuple(v) for k, v in lm.items()},
        )


@dataclass(frozen=True)
class ItemText:
    """The text of one item as a provider sees it."""

    key: str
    title: str
    body: str
    source: str = "github"
    scope: str = ""
    content_hash: str = ""


@dataclass(frozen=True)
class Example:
    """A human-labelled item used as a few-shot example (or training row)."""

    title: str
    body: str
    category: str
    labels: tuple[str, ...] = ()
    # Labels a maintainer removed after triage added them: a counter-example ("not this label").
    not_labels: tuple[str, ...] = ()


class ItemAnswer(BaseModel):
    """One item's answer as the model must give it (the response schema)."""

    id: str
    category: str
    labels: list[str] = Field(default_factory=list)
    priority: str = "medium"
    summary: str = ""
    confidence: float = Field(0.5, ge=0.0, le=1.0)


class BatchAnswer(BaseModel):
    items: list[ItemAnswer]


@dataclass
class Classification:
    """A validated result for one item."""

    key: str
    category: str
    labels: list[str]
    priority: str
    summary: str
    confidence: float
    dropped: list[str] = field(default_factory=list)  # answers outside the allowlist
    call: CallRecord | None = None  # the call that answered it (links analyses to llm_calls)
    # How the answer was reached when not by the provider's own model for this item's source,
    # e.g. "pooled model: ..." or "rules: ..." from the local provider; stored as the reason.
    note: str | None = None


@dataclass
class Review:
    """An item the model would not answer (e.g. a safety block): stored as needs_review."""

    key: str
    reason: str
    call: CallRecord | None = None


@dataclass
class ClassifyOutcome:
    results: list[Classification] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # key -> why it is still pending
    calls: list[CallRecord] = field(default_factory=list)
    # Set when going on is pointless (quota gone, service down): the run stops, items stay pending.
    stop: str | None = None

    def extend(self, other: ClassifyOutcome) -> None:
        self.results += other.results
        self.reviews += other.reviews
        self.failed.update(other.failed)
        self.calls += other.calls
        self.stop = self.stop or other.stop


class ProviderDeps(Protocol):
    """What a provider may take from the Context: settings, keys and the database."""

    @property
    def config(self) -> Config: ...

    @property
    def secrets(self) -> Secrets: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...


class DoctorDeps(ProviderDeps, Protocol):
    """A doctor check may also insist on a current schema before it reads the database."""

    def require_schema(self) -> None: ...


@runtime_checkable
class Classifier(Protocol):
    """A model that classifies and summarizes batches of items (every provider is one)."""

    name: str  # the PROVIDERS name that built it
    model: str
    prompt_version: str

    def classify(
        self, items: Sequence[ItemText], taxonomy: Taxonomy, examples: Sequence[Example]
    ) -> ClassifyOutcome: ...


@runtime_checkable
class JsonModel(Protocol):
    """A model that answers one prompt with JSON of a given schema (themes, duplicate judging).

    Raises CallFailed (or ConfigError for a bad key/model) as a classification call does.
    """

    name: str
    model: str

    def generate_json(
        self, system: str, user: str, schema: type, purpose: str, prompt_version: str, items: int
    ) -> Reply: ...


@runtime_checkable
class Embedder(Protocol):
    """A model that turns texts into vectors (duplicates' candidates); errors are TriageErrors."""

    name: str
    embedding_model: str

    def embed(self, texts: Sequence[str], dimensions: int | None = None) -> list[list[float]]: ...


@runtime_checkable
class ModelAdvisor(Protocol):
    """A provider that knows when its configured model is going away (a model catalog)."""

    def model_notice(self, for_run: bool = False) -> str | None: ...


@runtime_checkable
class Closeable(Protocol):
    """A provider holding something to release when a run ends (caches, connections)."""

    def close(self) -> None: ...


def end_run(provider: object) -> None:
    """Release what a provider held for a run; it stays usable for the next one."""
    if isinstance(provider, Closeable):
        provider.close()


@dataclass
class Validated:
    results: list[Classification]
    missing: list[str]  # ids asked for but not answered
    unknown: int  # answers for ids we never asked about (ignored)
    duplicates: int  # ids answered more than once (first kept)
    dropped: int  # categories/labels/priorities outside the allowlist


def validate_answers(raw: Any, id_to_key: dict[str, str], taxonomy: Taxonomy) -> Validated:
    """Keep only well-formed answers for ids we asked about, with allowlisted values only.

    `raw` is the decoded JSON ({"items": [...]} or a bare list). Raises ValueError when it is
    not that shape at all, so the caller can retry or split the batch.
    """
    if isinstance(raw, dict) and "items" in raw:
        raw = raw["items"]
    if not isinstance(raw, list):
        raise ValueError("answer is not a list of items")
    results: list[Classification] = []
    seen: set[str] = set()
    unknown = duplicates = dropped_total = 0
    for entry in raw:
        try:
            answer = ItemAnswer.model_validate(entry)
        except ValidationError:
            continue
        key = id_to_key.get(answer.id)
        if key is None:
            unknown += 1
            continue
        if answer.id in seen:
            duplicates += 1
            continue
        if answer.category not in taxonomy.categories:
            dropped_total += 1
            continue  # an answer without a valid category is no answer: retried as missing
        seen.add(answer.id)
        dropped = [lb for lb in answer.labels if lb not in taxonomy.labels]
        labels = list(dict.fromkeys(lb for lb in answer.labels if lb in taxonomy.labels))
        priority = answer.priority if answer.priority in taxonomy.priorities else _middle(taxonomy)
        if answer.priority not in taxonomy.priorities:
            dropped.append(f"priority:{answer.priority}")
        dropped_total += len(dropped)
        results.append(
            Classification(
                key=key,
                category=answer.category,
                labels=labels,
                priority=priority,
                summary=answer.summary.strip()[:1000],
                confidence=answer.confidence,
                dropped=dropped,
            )
        )
    missing = [i for i in id_to_key if i not in seen]
    return Validated(results, missing, unknown, duplicates, dropped_total)


def _middle(taxonomy: Taxonomy) -> str:
    """The middle priority (the lower of the two middle ones for an even count)."""
    p = taxonomy.priorities
    return p[(len(p) - 1) // 2] if p else ""
