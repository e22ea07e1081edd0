"""The PROVIDERS registry: one entry per provider, read by the Context, doctor, eval and jobs.

Another provider is one more entry here and a package beside gemini/, local/ and openai/.
Factories and doctor checks are named as "module:function" and imported only when used, so a
run never loads a client library it does not need (and this module imports no provider).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from triage.config import Config, Secrets
from triage.errors import ConfigError
from triage.providers.base import Classifier, ProviderDeps


@dataclass(frozen=True)
class ProviderSpec:
    name: str  # "gemini" | "local" | "openai"
    factory: str  # "module:function" (deps: ProviderDeps) -> provider; imported lazily
    config_section: str  # "llm.gemini"
    secret_env: tuple[str, ...]  # ("GEMINI_API_KEY", "GOOGLE_API_KEY"); () when none is needed
    doctor: str | None  # "module:function" (ctx-like) -> str, lazily imported
    # "classify", "json" (JsonModel), "embed" (Embedder), "batch" (BatchJobs: jobs collected later),
    # "train" (learns from labelled items: `triage eval` trains it on the training rows),
    # "concurrent" (safe to call from `[llm] concurrency` threads at once)
    capabilities: frozenset[str]
    metered: bool = True  # the token budget applies
    # The setting that switches "embed" on, when it is not always there: a provider built
    # without it is no Embedder (duplicates refuse it with this hint).
    embed_setting: str | None = None


PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            name="gemini",
            factory="triage.providers.gemini.provider:build",
            config_section="llm.gemini",
            secret_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
            doctor="triage.providers.gemini.doctor:doctor_check",
            capabilities=frozenset({"classify", "json", "embed", "batch", "concurrent"}),
        ),
        ProviderSpec(
            name="local",
            factory="triage.providers.local.store:build",
            config_section="llm.local",
            secret_env=(),
            doctor="triage.providers.local.store:doctor_check",
            capabilities=frozenset({"classify", "train"}),
            metered=False,
        ),
        ProviderSpec(
            name="openai",
            factory="triage.providers.openai.embedding:build",
            config_section="llm.openai",
            secret_env=(),  # OPENAI_API_KEY is optional: a server of your own needs none
            doctor="triage.providers.openai.embedding:doctor_check",
            capabilities=frozenset({"classify", "json", "embed"}),
            embed_setting="[llm.openai] embedding_model",
        ),
    )
}

# Beside its `doctor`, a provider that embeds names the check of its embedding model so.
EMBEDDING_CHECK = "embedding_check"


def spec_for(name: str) -> ProviderSpec:
    """The registered provider; an unknown name is a one-line config error naming the known."""
    spec = PROVIDERS.get(name)
    if spec is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(f"unknown provider '{name}' (known: {known})")
    return spec


def concurrency_for(name: str, wanted: int) -> int:
    """Calls in flight for this provider: `[llm] concurrency` if it is safe to, else one."""
    return wanted if "concurrent" in spec_for(name).capabilities else 1


def load(target: str) -> Any:
    """The function a "module:function" entry names, imported now."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def build(deps: ProviderDeps, name: str) -> Classifier:
    """A new provider from its factory (the Context caches it: use `ctx.provider`)."""
    provider: Classifier = load(spec_for(name).factory)(deps)
    return provider


def secret(spec: ProviderSpec, secrets: Secrets) -> SecretStr | None:
    """The key a provider needs, when set (Secrets fields are its first variable, lower-cased)."""
    if not spec.secret_env:
        return None
    value = getattr(secrets, spec.secret_env[0].lower(), None)
    return value if isinstance(value, SecretStr) and value.get_secret_value() else None


def missing_secret(spec: ProviderSpec, secrets: Secrets) -> bool:
    """The provider needs a key and none is set."""
    return bool(spec.secret_env) and secret(spec, secrets) is None


def offline() -> ProviderSpec:
    """The provider that needs no key and no network: what runs when a key is missing."""
    return next(s for s in PROVIDERS.values() if not s.secret_env and not s.metered)


def fallback(config: Config, secrets: Secrets) -> str | None:
    """The one rule for a missing key: the configured provider needs one and none is set, so
    [llm] provider becomes the offline provider; returns what to say about it (once), else None.
    Every command and the daemon apply it where the Context is made (commands/common.py)."""
    spec = PROVIDERS.get(config.llm.provider)
    if spec is None or not missing_secret(spec, secrets):
        return None
    config.llm.provider = offline().name
    return (
        f"{spec.secret_env[0]} is not set: analysing with the {config.llm.provider} provider"
        " (set the key, or [llm] provider, to choose)"
    )
