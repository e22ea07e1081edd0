"""Gemini through google-genai: packed batch prompts, structured output, context caching.

The configured model's catalog entry (models.toml) sets prices, the cache minimum and how the
`[llm.gemini] thinking` setting is sent. Calls from every worker pass one shared rate limiter;
a 429 pauses them all for the delay the server names (or a backoff), up to `max_retries` times,
and otherwise stops the run with the items still pending.
"""

from __future__ import annotations

import difflib
import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from triage.config import Config
from triage.errors import ConfigError, ProviderError
from triage.logs import get_logger
from triage.providers import prompts
from triage.providers.base import ClassifyOutcome, Example, ItemText, ProviderDeps, Taxonomy
from triage.providers.batch_jobs import BatchRequest, JobStatus
from triage.providers.calls import CallFailed, CallRecord, Reply
from triage.providers.gemini import batch as batch_api
from triage.providers.gemini import catalog, embeddings
from triage.providers.gemini.caching import ContextCaches
from triage.providers.gemini.client import (
    MAX_BACKOFF,
    describe,
    error_detail,
    make_client,
    retry_delay,
)
from triage.providers.gemini.replies import raw_answer, reply_from
from triage.providers.gemini.transport import CALL_ERRORS, REQUEST_ERRORS
from triage.providers.limiter import RateLimiter, SimulatedClock
from triage.providers.packing import estimate_tokens
from triage.providers.repair import classify_batches

log = get_logger("triage.gemini")

NAME = "gemini"

# A 429 asking us to wait longer than this means the quota is gone for now: stop, resume later.
MAX_RATE_LIMIT_WAIT = 60.0
# Consecutive failed calls (5xx, timeouts) after which the run stops instead of trying on.
MAX_FAILED_CALLS = 3


class _CacheUnusable(Exception):
    """The run's context cache was refused (expired, deleted): retry the call without it."""


class GeminiProvider:
    """Classifies packed batches with one structured-output call each."""

    name = NAME
    max_job_bytes = batch_api.MAX_JOB_BYTES  # BatchJobs: Gemini's inline job limit

    def __init__(
        self,
        config: Config,
        api_key: str,
        sleep: Callable[[float], None] = time.sleep,
        today: date | None = None,
    ) -> None:
        self.cfg = config.llm.gemini
        self.llm = config.llm
        self.model = self.cfg.model
        self.embedding_model = self.cfg.embedding_model
        self.prompt_version = prompts.PROMPT_VERSION
        self.info = catalog.load().get(self.model)
        # A thinking setting the model rejects is a config error now, not a 400 per call.
        self.thinking = catalog.thinking_config(self.info, self.cfg.thinking)
        self.prices = catalog.prices_for(self.cfg, self.info, today or date.today())
        self.min_cache_tokens = catalog.min_cache_tokens(self.cfg, self.info)
        self._api_key = api_key
        self._local = threading.local()
        self._sleep = sleep
        rpm, tpm = self.cfg.requests_per_minute, self.cfg.tokens_per_minute
        if sleep is time.sleep:
            self.limiter = RateLimiter(rpm, tpm)
        else:
            clock = SimulatedClock(sleep)
            self.limiter = RateLimiter(rpm, tpm, clock=clock.now, sleep=clock.sleep)
        self.caches = ContextCaches(self)
        self._failed_calls = 0
        self._lock = threading.Lock()
        self._rerouted_said = False

    @property
    def client(self) -> genai.Client:
        """This thread's client (one per worker thread; see client.py)."""
        made = getattr(self._local, "client", None)
        if made is None:
            made = self._local.client = make_client(self.cfg, self._api_key)
        return made

    # -- classification ------------------------------------------------------------------
    def classify(
        self, items: Sequence[ItemText], taxonomy: Taxonomy, examples: Sequence[Example]
    ) -> ClassifyOutcome:
        system = prompts.system_instruction(taxonomy, examples)
        schema = prompts.response_model(taxonomy)
        batches = prompts.pack_for(items, taxonomy, examples, self.llm)

        def call(its: Sequence[ItemText], ids: Sequence[str]) -> Reply:
            return self._call(its, ids, system, schema)

        # classify.run already calls this from [llm] concurrency workers: one packed batch
        # runs inline on its worker instead of opening a pool (and a client) of its own.
        workers = min(self.llm.concurrency, len(batches))
        out = classify_batches(batches, call, taxonomy, workers)
        out.calls += self.caches.take_records()  # creating a cache bills its tokens once
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
            thinking_config=self.thinking,
        )

    def record(self, items: int, batch: bool = False) -> CallRecord:
        return CallRecord(self.name, self.model, self.prompt_version, items=items, batch_mode=batch)

    def price(self, record: CallRecord) -> None:
        """Estimated cost: cached prompt tokens at the cached price, thinking as output."""
        p = self.prices
        usd = (
            (record.input_tokens - record.cached_tokens) * p.input
            + record.cached_tokens * p.cached_input
            + record.output_tokens * p.output
        ) / 1_000_000
        record.cost_usd = usd * (p.batch if record.batch_mode else 1.0)

    def _call(
        self, items: Sequence[ItemText], ids: Sequence[str], system: str, schema: type
    ) -> Reply:
        user = self.user_prompt(items, ids)
        cache = self.caches.name_for(system)
        config = self.generation_config(schema, system, cache)
        try:
            return self._send(user, config, self.record(len(items)), estimate_tokens(system))
        except _CacheUnusable as exc:
            log.warning("context cache unusable, continuing without it", error=str(exc))
            self.caches.off = True
            return self._call(items, ids, system, schema)

    def generate_json(
        self, system: str, user: str, schema: type, purpose: str, prompt_version: str, items: int
    ) -> Reply:
        """One structured-output call for another purpose (themes, duplicates), no cache.

        Raises CallFailed (or ConfigError for a bad key/model) like a classification call.
        """
        record = CallRecord(self.name, self.model, prompt_version, purpose=purpose, items=items)
        config = self.generation_config(schema, system, None)
        return self._send(user, config, record, estimate_tokens(system))

    def _send(
        self, user: str, config: types.GenerateContentConfig, record: CallRecord, prefix: int
    ) -> Reply:
        """One call with its latency, usage and price in `record`; failures mapped by `failure`."""
        started = time.monotonic()
        try:
            answer = self._generate(user, config, prefix + estimate_tokens(user))
        except CALL_ERRORS as exc:
            if config.cached_content and self._is_cache_error(exc):
                raise _CacheUnusable(describe(exc)) from None
            record.latency_ms = int((time.monotonic() - started) * 1000)
            raise self.failure(exc, record) from None
        record.latency_ms = int((time.monotonic() - started) * 1000)
        with self._lock:
            self._failed_calls = 0
        self._check_version(answer)
        reply = reply_from(answer, record)
        self.price(record)
        return reply

    def _generate(
        self, user: str, config: types.GenerateContentConfig, tokens: int
    ) -> dict[str, Any]:
        """One call, read as the JSON sent (see replies.py); a truncated body is asked again."""
        raw = config.model_copy(update={"should_return_http_response": True})
        for _ in range(self.cfg.max_retries):
            try:
                return raw_answer(self._generate_once(user, raw, tokens))
            except json.JSONDecodeError as exc:
                log.warning("truncated answer from Gemini; asking again", error=str(exc)[:80])
        return raw_answer(self._generate_once(user, raw, tokens))

    def _generate_once(self, user: str, config: types.GenerateContentConfig, tokens: int) -> Any:
        """One call through the shared limiter; a 429 pauses every worker, then tries again."""
        attempt = 0
        while True:
            self.limiter.acquire(tokens)
            try:
                return self.client.models.generate_content(
                    model=self.model, contents=user, config=config
                )
            except genai_errors.APIError as exc:
                if exc.code != 429 or attempt >= self.cfg.max_retries:
                    raise
                delay = retry_delay(exc)
                if delay is None:
                    delay = min(self.cfg.retry_initial_delay * 2**attempt, MAX_BACKOFF)
                if delay > MAX_RATE_LIMIT_WAIT:
                    raise
                log.info("rate limited, every worker waits", seconds=delay)
                self.limiter.pause(delay)
                attempt += 1

    def _check_version(self, answer: dict[str, Any]) -> None:
        """A deprecated model is answered by another: say so once per run."""
        version = str(answer.get("modelVersion") or "")
        if version and not version.startswith(self.model) and not self._rerouted_said:
            self._rerouted_said = True
            log.warning(
                "Gemini answered with another model (billed at its rate)",
                configured=self.model,
                answered_by=version,
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
        elif isinstance(exc, json.JSONDecodeError):
            record.error = "truncated answer (cut-off JSON body), retried"
        elif "Timeout" in type(exc).__name__:
            record.error = (
                f"no answer within [llm.gemini] timeout ({self.cfg.timeout:g}s): raise it, or"
                " re-run later"
            )
        else:
            record.error = f"network error: {type(exc).__name__}"
        with self._lock:
            self._failed_calls += 1
            stop = self._failed_calls >= MAX_FAILED_CALLS
        why = f"Gemini call failed after retries ({record.error})"
        if stop:
            why += "; stopping after repeated failures"
        return CallFailed(why, record, stop)

    @staticmethod
    def _is_cache_error(exc: Exception) -> bool:
        if not isinstance(exc, genai_errors.APIError):
            return False
        return exc.code in (400, 403, 404) and "cache" in (exc.message or "").lower()

    @property
    def cache_names(self) -> list[str]:
        return self.caches.names

    def close(self) -> None:
        """End the run: delete its caches (storage is billed) and start the next one afresh."""
        self.caches.close()
        with self._lock:
            self._failed_calls = 0

    # -- Batch Mode (BatchJobs) ---------------------------------------------------------
    def build_request(
        self, items: Sequence[ItemText], ids: Sequence[str], system: str, schema: type, index: int
    ) -> BatchRequest:
        return batch_api.build_request(self, items, ids, system, schema, index)

    def create_job(self, requests: Sequence[BatchRequest], display_name: str) -> JobStatus:
        return batch_api.create_job(self, requests, display_name)

    def find_jobs(self, display_name: str) -> list[JobStatus]:
        return batch_api.find_jobs(self, display_name)

    def get_job(self, name: str, sizes: Sequence[int]) -> JobStatus:
        return batch_api.get_job(self, name, sizes)

    # -- models and embeddings -----------------------------------------------------------
    def check_model(self) -> str:
        """The configured model's display name; a one-line error with close names if unknown."""
        try:
            info = self.client.models.get(model=self.model)
        except REQUEST_ERRORS as exc:
            failure = self.failure(exc, self.record(0))
            if isinstance(failure, CallFailed):
                raise ProviderError(failure.reason) from None
            raise failure from None
        return info.display_name or info.name or self.model

    def listed_models(self) -> list[str] | None:
        """The model names the API lists (None when it cannot list them)."""
        try:
            return [(m.name or "").removeprefix("models/") for m in self.client.models.list()]
        except REQUEST_ERRORS:
            return None

    def model_notice(self, for_run: bool = False, today: date | None = None) -> str | None:
        """A warning about the configured model: shutting down, rerouted, unlisted, unknown.

        `for_run`: only what a run should say before it starts; a model the API does not list
        fails its first call with a one-line error of its own (its replacement, close names).
        """
        names = self.listed_models()
        unlisted = names is not None and self.model not in names
        if for_run and unlisted:
            return None
        notice = catalog.shutdown_notice(self.info, self.model, today or date.today())
        if notice:
            return notice
        if unlisted:
            return f"Gemini model {self.model} is not among the models the API lists"
        if for_run:
            return None
        if self.info is None:
            return (
                f"Gemini model {self.model} is not in triage's model catalog: prices come from"
                " [llm.gemini] only and thinking is left at the model's default"
            )
        return None

    def unknown_model(self) -> ConfigError:
        """The error for a 404: the replacement of a retired model, or close model names."""
        retired = catalog.retired_error(self.info, self.model)
        if retired is not None:
            return retired
        names = self.listed_models()
        if names is None:
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
