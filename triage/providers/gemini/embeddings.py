"""Gemini embeddings (gemini-embedding-001) through batchEmbedContents, 100 texts a request.

Errors come back as TriageErrors a maintainer can act on, never as the SDK's own exceptions:
an unknown model or refused key is a config error, a 429 means the quota is gone for now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from triage.errors import ConfigError, ProviderError, QuotaExhausted
from triage.providers.gemini.transport import HTTP_ERRORS

EMBED_CHUNK = 100  # batchEmbedContents takes at most 100 requests


def embed(
    client: genai.Client, model: str, texts: Sequence[str], dimensions: int | None = None
) -> list[list[float]]:
    """One vector per text, in order."""
    out: list[list[float]] = []
    config = types.EmbedContentConfig(output_dimensionality=dimensions)
    try:
        for start in range(0, len(texts), EMBED_CHUNK):
            chunk: Any = list(texts[start : start + EMBED_CHUNK])
            resp = client.models.embed_content(model=model, contents=chunk, config=config)
            out += [list(e.values or []) for e in resp.embeddings or []]
    except genai_errors.APIError as exc:
        raise _error(exc, model) from None
    except HTTP_ERRORS as exc:
        raise ProviderError(
            f"Gemini embedding request failed after retries ({type(exc).__name__})"
        ) from None
    if len(out) != len(texts) or any(not v for v in out):
        raise ProviderError(f"Gemini returned {len(out)} embeddings for {len(texts)} texts; re-run")
    return out


def _error(exc: genai_errors.APIError, model: str) -> Exception:
    if exc.code == 404:
        return ConfigError(
            f"unknown Gemini embedding model '{model}' ([llm.gemini] embedding_model)"
        )
    if exc.code in (400, 401, 403):
        return ConfigError(f"the Gemini API refused the embedding request: {exc.message}")
    if exc.code == 429:
        return QuotaExhausted(
            "Gemini embedding quota exhausted (429); vectors made so far are kept, re-run later"
        )
    return ProviderError(f"Gemini embedding request failed: {exc.code} {exc.message}")
