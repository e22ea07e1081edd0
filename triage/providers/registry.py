"""Provider names and how to build each one from the Context.

Another provider is one more entry in PROVIDERS: a name and a factory taking the Context.
Factories import their provider lazily, so a run never loads a client library it does not use.
"""

from __future__ import annotations

from collections.abc import Callable

from triage.context import Context
from triage.errors import ConfigError
from triage.providers.base import Provider

Factory = Callable[[Context], Provider]


def _gemini(ctx: Context) -> Provider:
    from triage.providers.gemini import GeminiProvider

    key = ctx.secrets.gemini_api_key
    if key is None or not key.get_secret_value():
        raise ConfigError(
            "GEMINI_API_KEY is not set (GOOGLE_API_KEY also works); export it,"
            " or run with `--provider local` to classify without Gemini"
        )
    return GeminiProvider(ctx.config, key.get_secret_value())


def _openai(ctx: Context) -> Provider:
    from triage.providers.openai_compat import from_context

    return from_context(ctx)


def _local(ctx: Context) -> Provider:
    from triage.providers.local import from_context

    return from_context(ctx)


PROVIDERS: dict[str, Factory] = {
    "gemini": _gemini,
    "openai": _openai,
    "local": _local,
}


def get_provider(ctx: Context, name: str | None = None) -> Provider:
    """The named provider, or the configured `[llm] provider` when no name is given."""
    chosen = name or ctx.config.llm.provider
    factory = PROVIDERS.get(chosen)
    if factory is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(f"unknown provider '{chosen}' (known: {known})")
    return factory(ctx)
