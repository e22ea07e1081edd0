"""Embeddings from the OpenAI-compatible server, when `[llm.openai] embedding_model` is set.

Ollama (`embeddinggemma`, `nomic-embed-text`: https://pypi.org/project/llama-index-embeddings-ollama/),
vLLM and text-embeddings-inference serve POST /v1/embeddings. Only a provider built with an
embedding model is an `Embedder`, so `triage duplicates --provider openai` follows the config:
without one it is refused with a hint, with one its vectors find candidates and the chat model
judges them. `dimensions` is not sent: Ollama's compatibility layer has refused it
(https://gist.github.com/cyyeh/b1042006b4ca067f2a75abd97e3749fb); vectors keep the model's size.
"""

from __future__ import annotations

from collections.abc import Sequence

from triage.errors import ProviderError, QuotaExhausted
from triage.providers.base import ProviderDeps
from triage.providers.openai.http import TransientError, model_available
from triage.providers.openai.provider import NAME, OpenAIProvider, doctor_check, quick_provider

__all__ = ["OpenAIEmbeddingProvider", "build", "doctor_check", "embedding_check"]

EMBED_CHUNK = 64  # texts per request: small enough for a laptop's server to answer in time


class OpenAIEmbeddingProvider(OpenAIProvider):
    """The chat provider plus the server's embedding model."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.embedding_model = self.cfg.embedding_model

    def embed(self, texts: Sequence[str], dimensions: int | None = None) -> list[list[float]]:
        """One vector per text, in order, EMBED_CHUNK texts a request."""
        out: list[list[float]] = []
        try:
            for start in range(0, len(texts), EMBED_CHUNK):
                chunk = list(texts[start : start + EMBED_CHUNK])
                out += self.client.embeddings(self.embedding_model, chunk).vectors
        except (TransientError, QuotaExhausted) as exc:
            raise ProviderError(f"embedding request failed: {exc}") from None
        return out


def build(deps: ProviderDeps) -> OpenAIProvider:
    """The provider for `--provider openai`; the key is optional (local servers need none)."""
    key = deps.secrets.openai_api_key
    secret = key.get_secret_value() if key else None
    if deps.config.llm.openai.embedding_model:
        return OpenAIEmbeddingProvider(deps.config, secret)
    return OpenAIProvider(deps.config, secret)


def embedding_check(ctx: ProviderDeps) -> str:
    """`triage doctor`: the server lists the embedding model and embeds a probe text."""
    cfg = ctx.config.llm.openai
    if ctx.config.llm.provider != NAME:
        return f"skipped ([llm] provider is {ctx.config.llm.provider})"
    if not cfg.embedding_model:
        return "skipped (no [llm.openai] embedding_model: duplicates run offline)"
    provider = quick_provider(ctx)
    try:
        available = provider.client.models()
        if available and not model_available(cfg.embedding_model, available):
            raise provider.client.unknown_model_error(
                cfg.embedding_model, available, setting="embedding_model"
            )
        reply = provider.client.embeddings(cfg.embedding_model, ["triage doctor"])
    finally:
        provider.close()
    size = len(reply.vectors[0])
    return f"embedding model '{cfg.embedding_model}' ({size} dimensions) for duplicates"
