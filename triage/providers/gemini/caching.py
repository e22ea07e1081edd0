"""The run's explicit context caches: one per shared instruction that is long enough.

Created once (under a lock, so concurrent workers wait for the first one instead of creating
their own), billed once, and deleted when the run ends (storage is billed by the hour).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Protocol

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from triage.config import GeminiConfig
from triage.logs import get_logger
from triage.providers.calls import CallRecord
from triage.providers.gemini.client import describe
from triage.providers.gemini.transport import HTTP_ERRORS, REQUEST_ERRORS
from triage.providers.packing import estimate_tokens

log = get_logger("triage.gemini")


class CacheOwner(Protocol):
    """What the caches take from the Gemini provider that owns them."""

    cfg: GeminiConfig
    model: str
    prompt_version: str
    min_cache_tokens: int

    @property
    def client(self) -> genai.Client: ...

    def record(self, items: int, batch: bool = False) -> CallRecord: ...

    def price(self, record: CallRecord) -> None: ...

    def unknown_model(self) -> Exception: ...

    def check_model(self) -> str: ...


class ContextCaches:
    """prefix hash -> cachedContent name (None: too small, or refused) for one provider."""

    def __init__(self, provider: CacheOwner) -> None:
        self.p = provider
        self._names: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self.off = not provider.cfg.use_cache
        self._records: list[CallRecord] = []  # creations, reported with the next outcome

    def name_for(self, system: str) -> str | None:
        """The cachedContent for this instruction; a 404 for the model is the model's error."""
        if self.off:
            return None
        digest = hashlib.sha256(system.encode()).hexdigest()
        with self._lock:
            if digest in self._names:
                return self._names[digest]
            name = None
            try:
                if (
                    not self._names
                ):  # before the run's first cache: a wrong model or key is one error
                    self.p.check_model()
                if self._prefix_tokens(system) >= self.p.min_cache_tokens:
                    cache = self.p.client.caches.create(
                        model=self.p.model,
                        config=types.CreateCachedContentConfig(
                            system_instruction=system,
                            ttl=f"{self.p.cfg.cache_ttl_seconds}s",
                            display_name=f"triage {self.p.prompt_version}",
                        ),
                    )
                    name = cache.name
                    self._records.append(self._record(cache))
            except genai_errors.APIError as exc:
                if exc.code == 404 and f"models/{self.p.model}" in (exc.message or ""):
                    raise self.p.unknown_model() from None  # the model is gone: say that
                log.warning("context cache not created, continuing without it", error=describe(exc))
            except HTTP_ERRORS as exc:
                log.warning("context cache not created, continuing without it", error=describe(exc))
            self._names[digest] = name
            return name

    def _prefix_tokens(self, system: str) -> int:
        estimate = estimate_tokens(system)
        if estimate < self.p.min_cache_tokens * 0.75:
            return estimate  # clearly too small: spare the countTokens call
        counted = self.p.client.models.count_tokens(model=self.p.model, contents=system)
        return counted.total_tokens or estimate

    def _record(self, cache: types.CachedContent) -> CallRecord:
        record = self.p.record(0)
        record.purpose = "cache"
        usage = cache.usage_metadata
        record.input_tokens = (usage.total_token_count or 0) if usage else 0
        self.p.price(record)
        return record

    def take_records(self) -> list[CallRecord]:
        with self._lock:
            out, self._records = self._records, []
        return out

    @property
    def names(self) -> list[str]:
        return [n for n in self._names.values() if n]

    def close(self) -> None:
        """Delete this run's caches and start the next run afresh."""
        with self._lock:
            for digest, name in list(self._names.items()):
                if name:
                    try:
                        self.p.client.caches.delete(name=name)
                    except REQUEST_ERRORS as exc:
                        log.warning(
                            "could not delete context cache", cache=name, error=describe(exc)
                        )
                self._names.pop(digest, None)
            self.off = not self.p.cfg.use_cache
            self._records = []
