"""`triage doctor`'s check of the Gemini embedding model; light imports (no numpy, no sklearn)."""

from __future__ import annotations

import httpx
from google.genai import errors as genai_errors

from triage.context import Context
from triage.errors import ConfigError, ProviderError


def doctor_check(ctx: Context) -> str:
    """`triage doctor`: the embedding model that `triage duplicates` uses exists and embeds."""
    from triage.providers.gemini import make_client

    cfg = ctx.config.llm.gemini
    key = ctx.secrets.gemini_api_key
    if ctx.config.llm.provider != "gemini" or key is None:
        return f"skipped (duplicates use {ctx.config.llm.provider} without Gemini embeddings)"
    client = make_client(cfg.model_copy(update={"max_retries": 0}), key.get_secret_value())
    try:
        info = client.models.get(model=cfg.embedding_model)
    except genai_errors.APIError as exc:
        if exc.code == 404:
            raise ConfigError(
                f"unknown Gemini embedding model '{cfg.embedding_model}'"
                " ([llm.gemini] embedding_model)"
            ) from None
        raise ProviderError(f"cannot check the embedding model: {exc.code} {exc.message}") from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"cannot reach {cfg.base_url} ({type(exc).__name__})") from None
    if info.supported_actions and "embedContent" not in info.supported_actions:
        raise ConfigError(f"'{cfg.embedding_model}' does not embed ([llm.gemini] embedding_model)")
    return f"embedding model {cfg.embedding_model} for duplicates"
