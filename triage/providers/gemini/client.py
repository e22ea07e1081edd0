"""The google-genai client as triage builds it, and what its errors say (without the key).

The SDK retries 408 and 5xx with bounded exponential backoff; 429 is left to the provider, so a
rate limit pauses every worker through the shared limiter instead of one worker alone.
google-genai's sync client sends through one httpx.Client per instance; the provider keeps one
client per worker thread so no two threads share a connection pool's state.
"""

from __future__ import annotations

from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from triage.config import GeminiConfig

RETRY_STATUS = [408, 500, 502, 503, 504]
MAX_BACKOFF = 30.0


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
