"""HTTP client for an OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM).

Plain httpx: every call has a timeout, 429 and 5xx are retried a bounded number of times with
backoff, and Retry-After is honoured. The API key is sent only as a Bearer header and never
appears in an error message.
"""

from __future__ import annotations

import difflib
import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from triage.errors import ConfigError, ProviderError, QuotaExhausted

# A server asking us to wait longer than this is out of quota for now: stop, resume later.
MAX_RETRY_WAIT = 120.0
MAX_BACKOFF = 30.0


class TransientError(ProviderError):
    """429, 5xx or a network failure that outlived its retries: the items stay pending."""


@dataclass
class ChatReply:
    """What one chat-completions call gave back, with the numbers accounting needs."""

    content: str | None
    finish_reason: str
    refusal: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    latency_ms: int
    model: str


@dataclass
class EmbeddingReply:
    vectors: list[list[float]]
    prompt_tokens: int
    latency_ms: int


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (Retry-After, or OpenAI's retry-after-ms)."""
    ms = resp.headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    raw = resp.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:  # the other form Retry-After may take: an HTTP date
        return max(0.0, email.utils.parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _error_message(resp: httpx.Response) -> str:
    """The server's own error text (`{"error": {"message": ...}}`), one line, trimmed."""
    try:
        body = resp.json()
        err = body.get("error") if isinstance(body, dict) else None
        msg = err.get("message") if isinstance(err, dict) else err
        text = str(msg or body)
    except ValueError:
        text = resp.text
    return " ".join(text.split())[:300]


class OpenAIClient:
    """Chat completions and the model list of one OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 300.0,
        max_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self._sleep = sleep
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers, self._timeout = headers, timeout
        self._http: httpx.Client | None = None

    def close(self) -> None:
        """Close the connections; a later request opens new ones (the client outlives a run)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.base_url, headers=self._headers, timeout=self._timeout
            )
        return self._http

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Send with bounded retries; return the first non-retryable response."""
        last = ""
        for attempt in range(self.max_retries + 1):
            wait = min(MAX_BACKOFF, 2.0**attempt) * (0.5 + random.random() / 2)
            try:
                resp = self._client().request(method, path, json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__} talking to {self.base_url}"
            else:
                if resp.status_code != 429 and resp.status_code < 500:
                    return resp
                last = f"HTTP {resp.status_code} from {self.base_url}: {_error_message(resp)}"
                asked = _retry_after(resp) if resp.status_code in (429, 503) else None
                if asked is not None:
                    if asked > MAX_RETRY_WAIT:
                        raise QuotaExhausted(
                            f"{self.base_url} is rate limiting (retry after {asked:.0f}s); "
                            "pending items are kept, run `triage analyze` again later"
                        )
                    wait = asked
            if attempt < self.max_retries:
                self._sleep(wait)
        raise TransientError(f"{last} (gave up after {self.max_retries + 1} attempts)")

    def _check(self, resp: httpx.Response, what: str) -> dict[str, Any]:
        if resp.status_code in (401, 403):
            raise ConfigError(
                f"{self.base_url} refused the credentials ({resp.status_code}): "
                "check OPENAI_API_KEY (or unset it for a local server)"
            )
        if resp.status_code >= 400:
            raise ProviderError(f"{what} failed ({resp.status_code}): {_error_message(resp)}")
        try:
            data = resp.json()
        except ValueError:
            raise ProviderError(f"{what}: {self.base_url} did not answer JSON") from None
        if not isinstance(data, dict):
            raise ProviderError(f"{what}: unexpected answer from {self.base_url}")
        return data

    def models(self) -> list[str]:
        """Ids of the models the server offers (GET /models)."""
        data = self._check(self._request("GET", "/models"), "listing models")
        return [str(m.get("id")) for m in data.get("data") or [] if isinstance(m, dict)]

    def chat(self, payload: dict[str, Any]) -> ChatReply:
        """One POST /chat/completions; the caller judges the content."""
        started = time.monotonic()
        resp = self._request("POST", "/chat/completions", payload)
        latency = int((time.monotonic() - started) * 1000)
        if resp.status_code == 404 or (
            resp.status_code == 400 and "model" in _error_message(resp).lower()
        ):
            self._unknown_model(str(payload.get("model")), resp)
        data = self._check(resp, "chat completion")
        choices = data.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("message") or {}
        usage = data.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        return ChatReply(
            content=message.get("content"),
            finish_reason=str(choice.get("finish_reason") or ""),
            refusal=message.get("refusal"),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0),
            latency_ms=latency,
            model=str(data.get("model") or payload.get("model")),
        )

    def embeddings(self, model: str, texts: list[str]) -> EmbeddingReply:
        """One POST /embeddings for a list of texts; vectors come back in input order.

        Shape: https://platform.openai.com/docs/api-reference/embeddings/create (`input` a list
        of strings, `data[].embedding` floats with `data[].index`, `usage.prompt_tokens`);
        Ollama, vLLM and text-embeddings-inference serve the same path.
        """
        started = time.monotonic()
        payload = {"model": model, "input": texts, "encoding_format": "float"}
        resp = self._request("POST", "/embeddings", payload)
        latency = int((time.monotonic() - started) * 1000)
        if resp.status_code == 404 or (
            resp.status_code == 400 and "model" in _error_message(resp).lower()
        ):
            self._unknown_model(model, resp, setting="embedding_model")
        data = self._check(resp, "embedding request")
        rows = [r for r in data.get("data") or [] if isinstance(r, dict)]
        rows.sort(key=lambda r: int(r.get("index") or 0))
        vectors = [[float(x) for x in r.get("embedding") or []] for r in rows]
        if len(vectors) != len(texts) or any(not v for v in vectors):
            raise ProviderError(
                f"{self.base_url} returned {len(vectors)} embeddings for {len(texts)} texts"
            )
        usage = data.get("usage") or {}
        return EmbeddingReply(vectors, int(usage.get("prompt_tokens") or 0), latency)

    def _unknown_model(self, model: str, resp: httpx.Response, setting: str = "model") -> None:
        """Turn a model-not-found answer into an error that lists close model names."""
        try:
            available = self.models()
        except ProviderError:
            available = []
        if available and model_available(model, available):
            return  # the 400/404 was about something else; let _check report it
        raise self.unknown_model_error(model, available, _error_message(resp), setting)

    def unknown_model_error(
        self, model: str, available: list[str], detail: str = "", setting: str = "model"
    ) -> ConfigError:
        close = difflib.get_close_matches(model, available, n=5, cutoff=0.3) or available[:5]
        hint = f"; close names: {', '.join(close)}" if close else ""
        why = f" ({detail})" if detail else ""
        return ConfigError(
            f"model '{model}' is not served by {self.base_url}{why}{hint};"
            f" set [llm.openai] {setting}"
        )


def model_available(model: str, available: list[str]) -> bool:
    """True when the server lists the model (Ollama lists `gemma3` as `gemma3:latest`)."""
    return model in available or (":" not in model and f"{model}:latest" in available)
