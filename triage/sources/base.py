"""What every source yields: typed items in pages, each page carrying the cursor it advances to."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, Field, field_validator, model_validator

from triage.config import Config, Secrets
from triage.sources.storable import make_storable

if TYPE_CHECKING:
    from triage.clients.github import GitHubClient
    from triage.clients.stackexchange import StackExchangeClient

ISO = "%Y-%m-%dT%H:%M:%SZ"


def format_cursor(value: datetime) -> str:
    """The one form a cursor is stored in (UTC, whole seconds), whichever source wrote it."""
    return value.strftime(ISO)


def parse_cursor(value: str) -> datetime:
    return datetime.strptime(value, ISO)


def content_hash(title: str, body: str) -> str:
    """Hash of the text analysis depends on; unchanged text is never analysed twice."""
    # surrogatepass: a hash never fails, even for text that did not come through ItemIn.
    text = f"{title}\n\x1e\n{body}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def to_utc(value: datetime) -> datetime:
    """Naive UTC, the one form the database stores."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


class ItemIn(BaseModel):
    """One fetched issue or question, normalised across sources."""

    key: str
    source: Literal["github", "stackexchange"]
    scope: str
    number: int
    url: str
    title: str
    body: str = ""
    state: Literal["open", "closed"] = "open"
    state_reason: str | None = None
    author: str | None = None
    labels: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    assignees: list[str] = Field(default_factory=list)
    milestone: str | None = None
    is_pull_request: bool = False
    comments: int = 0
    reactions: int = 0
    score: int = 0
    answer_count: int = 0
    is_answered: bool = False
    accepted_answer_id: int | None = None
    view_count: int = 0
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """Every string storable in every database; what was changed is noted in `extra`."""
        if not isinstance(data, dict):
            return data
        changed: list[str] = []
        clean = {k: make_storable(v, k, changed) for k, v in data.items()}
        if changed:
            clean["extra"] = {**(clean.get("extra") or {}), "sanitized": changed}
        return clean

    @field_validator("created_at", "updated_at", "closed_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return None if v is None else to_utc(v)

    @property
    def content_hash(self) -> str:
        return content_hash(self.title, self.body)


def github_repo(repo: str) -> str:
    """GitHub compares owner and repository names case-insensitively: one spelling is kept."""
    return repo.strip().lower()


def github_key(repo: str, number: int) -> str:
    return f"github:{github_repo(repo)}#{number}"


def stackexchange_key(site: str, question_id: int) -> str:
    return f"stackexchange:{site}/{question_id}"


@dataclass
class Page:
    """A page of items and the cursor value to store once the page is committed."""

    items: list[ItemIn]
    cursor: str | None
    requests: int = 1
    quota_remaining: int | None = None
    # Extra resumable state (e.g. a page number) stored beside the cursor.
    state: dict[str, Any] = field(default_factory=dict)
    # Items the source skipped on purpose (e.g. pull requests), for progress counts.
    skipped: int = 0
    # The service said nothing changed (HTTP 304): the pass ends here, cursor and state kept.
    not_modified: bool = False


class Source(Protocol):
    """A fetchable stream of one repository or one Stack Exchange tag."""

    @property
    def name(self) -> str:
        """Stable name used for cursors, e.g. `github:owner/repo`, `stackexchange:site/tag`."""
        ...

    def pages(
        self, cursor: str | None, since: datetime | None, state: dict[str, Any]
    ) -> Iterator[Page]:
        """Yield pages oldest-change first, starting after `cursor` (or at `since`)."""
        ...

    def total_hint(self) -> int | None:
        """How many items to expect, if cheaply known (for the progress bar)."""
        ...


# (kind, name, build): one per configured repository spec and tag.
SourceBuilder = tuple[str, str, Callable[[], Sequence[Source]]]


class SourceDeps(Protocol):
    """What a source needs from the Context, so sources never import the Context itself."""

    @property
    def config(self) -> Config: ...

    @property
    def github(self) -> GitHubClient: ...

    @property
    def stackexchange(self) -> StackExchangeClient: ...

    def listing_state(self, name: str) -> dict[str, Any]:
        """What a source saved under `name` between runs (e.g. a listing's ETags), or {}."""
        ...

    def save_listing_state(self, name: str, state: dict[str, Any]) -> None: ...


class CheckDeps(SourceDeps, Protocol):
    """A source's `triage doctor` check also says which credentials are set."""

    @property
    def secrets(self) -> Secrets: ...
