"""`triage doctor`'s Gemini checks: the key and model answer, and the embedding model embeds."""

from __future__ import annotations

from google.genai import errors as genai_errors

from triage.errors import CheckWarning, ConfigError, ProviderError
from triage.providers.base import ProviderDeps
from triage.providers.gemini.client import make_client
from triage.providers.gemini.provider import GeminiProvider
from triage.providers.gemini.transport import HTTP_ERRORS


def doctor_check(ctx: ProviderDeps) -> str:
    """`triage doctor`: the key is accepted and the configured model exists."""
    if ctx.config.llm.provider != GeminiProvider.name and ctx.secrets.gemini_api_key is None:
        return f"skipped ([llm] provider is {ctx.config.llm.provider})"
    key = ctx.secrets.gemini_api_key
    if key is None:
        raise ConfigError("GEMINI_API_KEY is not set (or run with `--provider local`)")
    cfg = ctx.config.llm.gemini
    quick = cfg.model_copy(update={"max_retries": min(cfg.max_retries, 1)})
    config = ctx.config.model_copy(
        update={"llm": ctx.config.llm.model_copy(update={"gemini": quick})}
    )
    provider = GeminiProvider(config, key.get_secret_value())
    name = provider.check_model()
    line = f"model {cfg.model} ({name}) at {cfg.base_url} {cfg.api_version}"
    notice = provider.model_notice()
    if notice:  # retired, rerouted, near its shutdown or not listed: a warning, not a failure
        raise CheckWarning(f"{line}; {notice}")
    return line


def embedding_check(ctx: ProviderDeps) -> str:
    """`triage doctor`: the embedding model that `triage duplicates` uses exists and embeds."""
    cfg = ctx.config.llm.gemini
    key = ctx.secrets.gemini_api_key
    if ctx.config.llm.provider != GeminiProvider.name or key is None:
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
    except HTTP_ERRORS as exc:
        raise ProviderError(f"cannot reach {cfg.base_url} ({type(exc).__name__})") from None
    if info.supported_actions and "embedContent" not in info.supported_actions:
        raise ConfigError(f"'{cfg.embedding_model}' does not embed ([llm.gemini] embedding_model)")
    return f"embedding model {cfg.embedding_model} for duplicates"
