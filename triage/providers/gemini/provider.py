"""Gemini through google-genai: packed batch prompts, structured output, context caching.

The SDK does not retry unless told to, so the client is built with bounded exponential backoff
for 408/429/5xx; a 429 that outlives it is waited out once more when the server says how long
(RetryInfo), and otherwise stops the run with the items still pending.
"""

from __future__ import annotations

import difflib
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from triage.config import Config, GeminiConfig
from triage.errors import ConfigError, ProviderError
from triage.logs import get_logger
from triage.providers import prompts
from triage.providers.base import ClassifyOutcome, Example, ItemText, ProviderDeps, Taxonomy
from triage.providers.calls import CallFailed, CallRecord, Reply
from triage.providers.gemini import embeddings
from triage.providers.packing import estimate_tokens
from triage.providers.repair import classify_batches

log = get_logger("triage.gemini")

NAME = "gemini"

RETRY_STATUS = [408, 429, 500, 502, 503, 504]
MAX_BACKOFF = 30.0
# A 429 asking us to wait longer than this means the quota is gone for now: stop, resume later.
MAX_RATE_LIMIT_WAIT = 60.0
# Consecutive failed calls (5xx, timeouts) after which the run stops instead of trying on.
MAX_FAILED_CALLS = 3
BATCH_DISCOUNT = 0.5  # Batch Mode bills half the interactive price


def make_client(cfg: GeminiConfig, api_key: str) -> genai.Client:
    retry = types.HttpRetryOptions(
        attempts=cfg.max_retries + 1,
        initial_delay=cfg.retry_initial_delay,
        max_delay=MAX_BACKOFF,
        exp_base=2.0,
        jitter=cfg.retry_initial_delay,
        http_status_codes=RETRY_STATUS,
    )
    http = types.HttpOptions(
        base_url=cfg.base_url,
        api_version=cfg.api_version,
        timeout=int(cfg.timeout * 1000),
        retry_options=retry,
    )
    return genai.Client(vertexai=False, api_key=api_key, http_options=http)


def cost_usd(cfg: GeminiConfig, prompt: int, cached: int, output: int, batch: bool) -> float:
    """Estimated cost from the configured prices (cached prompt tokens at the cached price)."""
    usd = (
        (prompt - cached) * cfg.input_price
        + cached * cfg.cached_input_price
        + output * cfg.output_price
    ) / 1_000_000
    return usd * (BATCH_DISCOUNT if batch else 1.0)


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def error_detail(exc: genai_errors.APIError, key: str) -> Any:
    """A field of the first google.rpc detail that has it (e.g. reason, retryDelay)."""
    body = exc.details if isinstance(exc.details, dict) else {}
    for detail in (body.get("error") or body).get("details") or []:
        if isinstance(detail, dict) and key in detail:
            return detail[key]
    return None


def describe(exc: Exception) -> str:
    """A short error text without the response's details (they can echo the API key)."""
    if isinstance(exc, genai_errors.APIError):
        return f"{exc.code} {exc.status}: {exc.message}"[:300]
    return type(exc).__name__


def retry_delay(exc: genai_errors.APIError) -> float | None:
    raw = error_detail(exc, "retryDelay")
    try:
        return float(str(raw).rstrip("s")) if raw is not None else None
    except ValueError:
        return None


def reply_from(response: types.GenerateContentResponse, record: CallRecord) -> Reply:
    """Text, finish reason and any block of one answer, with its usage in `record`."""
    usage = response.usage_metadata
    if usage is not None:
        record.input_tokens = usage.prompt_token_count or 0
        record.cached_tokens = usage.cached_content_token_count or 0
        record.output_tokens = (usage.candidates_token_count or 0) + (
            usage.thoughts_token_count or 0
        )
    feedback = response.prompt_feedback
    # Gemini sends promptFeedback only when the prompt stopped it from answering at all, and
    # then not always with a blockReason.
    if feedback is not None and (feedback.block_reason is not None or not response.candidates):
        reason = feedback.block_reason or feedback.block_reason_message or "no reason given"
        why = _value(reason) + _ratings(feedback.safety_ratings)
        return Reply(None, record, "BLOCKED", f"prompt blocked by Gemini ({why})")
    if not response.candidates:
        return Reply(None, record, "EMPTY")
    cand = response.candidates[0]
    finish = _value(cand.finish_reason) if cand.finish_reason is not None else "STOP"
    parts = (cand.content.parts if cand.content else None) or []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if finish in ("STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"):
        return Reply(text, record, finish)
    why = finish + _ratings(cand.safety_ratings)
    return Reply(text, record, finish, f"answer blocked by Gemini ({why})")


def _ratings(ratings: Sequence[types.SafetyRating] | None) -> str:
    hit = [
        _value(r.category) for r in ratings or [] if r.blocked or _value(r.probability) == "HIGH"
    ]
    return f": {', '.join(hit)}" if hit else ""


class _CacheUnusable(Exception):
    """The run's context cache was refused (expired, deleted): retry the call without it."""


class GeminiProvider:
    """Classifies packed batches with one structured-output call each."""

    name = NAME

    def __init__(
        self,
        config: Config,
        api_key: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = config.llm.gemini
        self.llm = config.llm
        self.model = self.cfg.model
        self.embedding_model = self.cfg.embedding_model
        self.prompt_version = prompts.PROMPT_VERSION
        self.client = make_client(self.cfg, api_key)
        self._sleep = sleep
        self._caches: dict[str, str | None] = {}  # prefix hash -> cachedContent name
        self._cache_off = not self.cfg.use_cache
        self._failed_calls = 0
        # Cache creations bill their tokens once; reported with the next outcome.
        self._cache_records: list[CallRecord] = []

    # -- classification ------------------------------------------------------------------
    def classify(
        self, items: Sequence[ItemText], taxonomy: Taxonomy, examples: Sequence[Example]
    ) -> ClassifyOutcome:
        system = prompts.system_instruction(taxonomy, examples)
        schema = prompts.response_model(taxonomy)
        batches = prompts.pack_for(items, taxonomy, examples, self.llm)

        def call(its: Sequence[ItemText], ids: Sequence[str]) -> Reply:
            return self._call(its, ids, system, schema)

        out = classify_batches(batches, call, taxonomy)
        out.calls += self._cache_records  # creating a cache bills its tokens once
        self._cache_records = []
        return out

    def user_prompt(self, items: Sequence[ItemText], ids: Sequence[str]) -> str:
        rendered = [
            prompts.render_item(i, it, self.llm.max_item_chars)
            for i, it in zip(ids, items, strict=True)
        ]
        return prompts.user_prompt(rendered)

    def generation_config(
        self, schema: type, system: str | None, cache: str | None
    ) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(
            system_instruction=None if cache else system,
            cached_content=cache,
            response_mime_type="application/json",
            response_schema=schema,
        )

    def record(self, items: int, batch: bool = False) -> CallRecord:
        return CallRecord(self.name, self.model, self.prompt_version, items=items, batch_mode=batch)

    def price(self, record: CallRecord) -> None:
        record.cost_usd = cost_usd(
            self.cfg,
            record.input_tokens,
            record.cached_tokens,
            record.output_tokens,
            record.batch_mode,
        )

    def _call(
        self, items: Sequence[ItemText], ids: Sequence[str], system: str, schema: type
    ) -> Reply:
        user = self.user_prompt(items, ids)
        cache = self._cache_for(system)
        config = self.generation_config(schema, system, cache)
        try:
            return self._send(user, config, self.record(len(items)))
        except _CacheUnusable as exc:
            log.warning("context cache unusable, continuing without it", error=str(exc))
            self._cache_off = True
            return self._call(items, ids, system, schema)

    def generate_json(
        self, system: str, user: str, schema: type, purpose: str, prompt_version: str, items: int
    ) -> Reply:
        """One structured-output call for another purpose (themes, duplicates), no cache.

        Raises CallFailed (or ConfigError for a bad key/model) like a classification call.
        """
        record = CallRecord(self.name, self.model, prompt_version, purpose=purpose, items=items)
        return self._send(user, self.generation_config(schema, system, None), record)

    def _send(self, user: str, config: types.GenerateContentConfig, record: CallRecord) -> Reply:
        """One call with its latency, usage and price in `record`; failures mapped by `failure`."""
        started = time.monotonic()
        try:
            response = self._generate(user, config)
        except (genai_errors.APIError, httpx.HTTPError) as exc:
            if config.cached_content and self._is_cache_error(exc):
                raise _CacheUnusable(describe(exc)) from None
            record.latency_ms = int((time.monotonic() - started) * 1000)
            raise self.failure(exc, record) from None
        record.latency_ms = int((time.monotonic() - started) * 1000)
        self._failed_calls = 0
        reply = reply_from(response, record)
        self.price(record)
        return reply

    def _generate(self, user: str, config: types.GenerateContentConfig) -> Any:
        """One call; the client retries 429/5xx, and a 429 naming its wait gets one more try."""
        try:
            return self.client.models.generate_content(
                model=self.model, contents=user, config=config
            )
        except genai_errors.APIError as exc:
            delay = retry_delay(exc) if exc.code == 429 else None
            if delay is None or delay > MAX_RATE_LIMIT_WAIT:
                raise
            log.info("rate limited, waiting as asked", seconds=delay)
            self._sleep(delay)
            return self.client.models.generate_content(
                model=self.model, contents=user, config=config
            )

    def failure(self, exc: Exception, record: CallRecord) -> Exception:
        """Map an error that outlived its retries to a stop, a failed batch or a user error."""
        record.outcome = "error"
        if isinstance(exc, genai_errors.APIError):
            record.error = describe(exc)
            if exc.code in (400, 401, 403) and error_detail(exc, "reason") == "API_KEY_INVALID":
                return ConfigError(
                    "the Gemini API rejected GEMINI_API_KEY (API key not valid);"
                    " set a valid key or run with `--provider local`"
                )
            if exc.code in (401, 403):
                return ConfigError(f"the Gemini API refused access: {exc.message}")
            if exc.code == 404:
                return self.unknown_model()
            if exc.code == 429:
                return CallFailed(
                    "Gemini rate limit or quota exhausted (429 RESOURCE_EXHAUSTED);"
                    " re-run later to continue",
                    record,
                    stop=True,
                )
            if exc.code < 500:
                return CallFailed(f"Gemini refused the request: {record.error}", record)
        else:
            record.error = f"network error: {type(exc).__name__}"
        self._failed_calls += 1
        stop = self._failed_calls >= MAX_FAILED_CALLS
        why = f"Gemini call failed after retries ({record.error})"
        if stop:
            why += "; stopping after repeated failures"
        return CallFailed(why, record, stop)

    # -- context caching -----------------------------------------------------------------
    def _cache_for(self, system: str) -> str | None:
        """The run's cachedContent for this instruction, created once when it is big enough."""
        if self._cache_off:
            return None
        digest = hashlib.sha256(system.encode()).hexdigest()
        if digest in self._caches:
            return self._caches[digest]
        if not self._caches:  # before the run's first cache: a wrong model is one clear error
            self.check_model()
        name = None
        try:
            if self._prefix_tokens(system) >= self.cfg.min_cache_tokens:
                cache = self.client.caches.create(
                    model=self.model,
                    config=types.CreateCachedContentConfig(
                        system_instruction=system,
                        ttl=f"{self.cfg.cache_ttl_seconds}s",
                        display_name=f"triage {self.prompt_version}",
                    ),
                )
                name = cache.name
                self._cache_records.append(self._cache_record(cache))
        except (genai_errors.APIError, httpx.HTTPError) as exc:
            log.warning("context cache not created, continuing without it", error=describe(exc))
        self._caches[digest] = name
        return name

    def _cache_record(self, cache: types.CachedContent) -> CallRecord:
        record = self.record(0)
        record.purpose = "cache"
        record.input_tokens = (
            (cache.usage_metadata.total_token_count or 0) if cache.usage_metadata else 0
        )
        self.price(record)
        return record

    def _prefix_tokens(self, system: str) -> int:
        estimate = estimate_tokens(system)
        if estimate < self.cfg.min_cache_tokens * 0.75:
            return estimate  # clearly too small: spare the countTokens call
        counted = self.client.models.count_tokens(model=self.model, contents=system)
        return counted.total_tokens or estimate

    @staticmethod
    def _is_cache_error(exc: Exception) -> bool:
        if not isinstance(exc, genai_errors.APIError):
            return False
        return exc.code in (400, 403, 404) and "cache" in (exc.message or "").lower()

    @property
    def cache_names(self) -> list[str]:
        return [n for n in self._caches.values() if n]

    def close(self) -> None:
        """End the run: delete its caches (storage is billed) and start the next one afresh."""
        for digest, name in list(self._caches.items()):
            if name:
                try:
                    self.client.caches.delete(name=name)
                except (genai_errors.APIError, httpx.HTTPError) as exc:
                    log.warning("could not delete context cache", cache=name, error=describe(exc))
            self._caches.pop(digest, None)
        self._cache_off = not self.cfg.use_cache
        self._failed_calls = 0
        self._cache_records = []

    # -- models and embeddings -----------------------------------------------------------
    def check_model(self) -> str:
        """The configured model's display name; a one-line error with close names if unknown."""
        try:
            info = self.client.models.get(model=self.model)
        except (genai_errors.APIError, httpx.HTTPError) as exc:
            failure = self.failure(exc, self.record(0))
            if isinstance(failure, CallFailed):
                raise ProviderError(failure.reason) from None
            raise failure from None
        return info.display_name or info.name or self.model

    def unknown_model(self) -> ConfigError:
        """The error for a 404: close model names, or the endpoint when it cannot list models."""
        try:
            names = [(m.name or "").removeprefix("models/") for m in self.client.models.list()]
        except (genai_errors.APIError, httpx.HTTPError):
            # Not even the model list is there: the URL is wrong, not (only) the model name.
            return ConfigError(
                f"the Gemini API at {self.cfg.base_url} ({self.cfg.api_version}) answered 404"
                f" for model '{self.model}' and for the model list:"
                " check [llm.gemini] base_url and api_version"
            )
        close = difflib.get_close_matches(self.model, names, n=5, cutoff=0.5)
        hint = f"; close names: {', '.join(close)}" if close else ""
        return ConfigError(f"unknown Gemini model '{self.model}' ([llm.gemini] model){hint}")

    def embed(self, texts: Sequence[str], dimensions: int | None = None) -> list[list[float]]:
        """Embedding vectors for texts, 100 per request; failures as TriageErrors."""
        return embeddings.embed(self.client, self.embedding_model, texts, dimensions)


def build(deps: ProviderDeps) -> GeminiProvider:
    """The provider for `--provider gemini`; a missing key is a one-line config error."""
    key = deps.secrets.gemini_api_key
    if key is None or not key.get_secret_value():
        raise ConfigError(
            "GEMINI_API_KEY is not set (GOOGLE_API_KEY also works); export it,"
            " or run with `--provider local` to classify without Gemini"
        )
    return GeminiProvider(deps.config, key.get_secret_value())
