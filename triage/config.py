"""Configuration: a TOML file plus TRIAGE_<SECTION>__<KEY> environment overrides.

Secrets never live in the file: they are read from the environment only (see `Secrets`).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from triage.errors import ConfigError

ENV_PREFIX = "TRIAGE_"
ENV_DELIMITER = "__"
# Environment variables with our prefix that are not config keys.
NON_CONFIG_ENV = {"TRIAGE_CONFIG", "TRIAGE_TEST_POSTGRES_URL", "TRIAGE_DEBUG", "TRIAGE_LOG_FORMAT"}


def _http_url(value: str) -> str:
    """Clients build request URLs from these; an empty or relative one fails far from its cause."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL such as https://host/path, got {value!r}")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DatabaseConfig(Section):
    url: str = "sqlite:///triage.db"


class GitHubConfig(Section):
    api_url: HttpUrl = "https://api.github.com"
    repos: list[str] = Field(default_factory=list)
    include_pull_requests: bool = False
    per_page: int = Field(100, ge=1, le=100)
    timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0)
    # Longest we sleep for a primary rate-limit reset before saving state and exiting.
    max_rate_limit_wait: float = Field(900.0, ge=0)
    # First wait of the doubling backoff for 5xx answers and network errors.
    retry_backoff: float = Field(1.0, ge=0)
    # First wait after a secondary rate limit that names no Retry-After (GitHub asks for >= 60 s).
    secondary_rate_wait: float = Field(60.0, ge=0)
    # Where a repository's first sync starts: "90d" back from then, a date, or "" (all of it).
    since: str = ""


class StackExchangeConfig(Section):
    api_url: HttpUrl = "https://api.stackexchange.com/2.3"
    site: str = "stackoverflow"
    tags: list[str] = Field(default_factory=list)
    pagesize: int = Field(100, ge=1, le=100)
    filter: str = "withbody"
    timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0)
    max_backoff_wait: float = Field(600.0, ge=0)
    # Where a tag's first sync starts (questions created since): "90d", a date, or "" (all).
    since: str = ""


THINKING_LEVELS = ("off", "low", "medium", "high")


def _thinking(value: str | int) -> str | int:
    """`off`, `low`, `medium`, `high`, or a token budget (sent as the model expects)."""
    if isinstance(value, bool):
        raise ValueError("expected off, low, medium, high or a token budget")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a thinking budget is a number of tokens >= 0, got {value}")
        return value
    if value.strip().lower() not in THINKING_LEVELS:
        raise ValueError(f"expected off, low, medium, high or a token budget, got {value!r}")
    return value.strip().lower()


class GeminiConfig(Section):
    # A current GA Flash model from triage/providers/gemini/models.toml (its `default`).
    model: str = "gemini-3.8-flash"
    embedding_model: str = "gemini-embedding-001"
    base_url: HttpUrl = "https://generativelanguage.googleapis.com"
    api_version: str = "v1beta"
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=0)
    # First backoff delay (seconds) for 429/5xx retries; it doubles per attempt.
    retry_initial_delay: float = Field(1.0, ge=0)
    use_cache: bool = True
    cache_ttl_seconds: int = Field(3600, ge=60)
    # Smallest shared prefix (tokens) the model accepts for an explicit cache; 0: the catalog's.
    min_cache_tokens: int = Field(0, ge=0)
    batch_poll_interval: float = Field(30.0, gt=0)
    # USD per million tokens, for estimated cost only; 0: the model catalog's price for today.
    input_price: float = Field(0.0, ge=0)
    cached_input_price: float = Field(0.0, ge=0)
    output_price: float = Field(0.0, ge=0)
    # How much the model thinks before answering: off | low | medium | high | a token budget.
    thinking: Annotated[str | int, AfterValidator(_thinking)] = "low"
    # One limiter shared by every worker; 0: no limit of our own (the API still enforces its).
    requests_per_minute: int = Field(1000, ge=0)
    tokens_per_minute: int = Field(1_000_000, ge=0)


class OpenAIConfig(Section):
    base_url: HttpUrl = "http://localhost:11434/v1"
    model: str = "gemma3"
    timeout: float = Field(300.0, gt=0)
    max_retries: int = Field(3, ge=0)
    input_price: float = 0.0
    output_price: float = 0.0
    # An embedding model the same server serves (e.g. embeddinggemma or nomic-embed-text on
    # Ollama): when set, duplicates find candidates with it and the chat model judges them.
    embedding_model: str = ""


class LocalConfig(Section):
    # Retrain a source's model when its labelled set grew by this share.
    retrain_growth: float = Field(0.2, ge=0)
    # Fewer labelled items than this per category: use the pooled model.
    min_labels_per_category: int = Field(10, ge=1)
    summary_sentences: int = Field(2, ge=0)


class LLMConfig(Section):
    # A PROVIDERS name (triage/providers); checked where a provider is built, since this
    # module sits below the registry.
    provider: str = "gemini"
    daily_token_budget: int = Field(5_000_000, ge=0)
    run_token_budget: int = Field(0, ge=0)  # 0: no per-run cap beyond the daily budget
    max_prompt_tokens: int = Field(60_000, ge=1000)
    max_items_per_call: int = Field(100, ge=1)
    max_item_chars: int = Field(4000, ge=200)
    few_shot_per_category: int = Field(3, ge=0)
    # Model calls in flight at once (analyze, themes, duplicates judging, eval).
    concurrency: int = Field(4, ge=1)
    # Tokens of human-labelled examples in the cached prefix; 0: only few_shot_per_category.
    shot_tokens: int = Field(0, ge=0)
    gemini: GeminiConfig = Field(default_factory=GeminiConfig)
    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)
    local: LocalConfig = Field(default_factory=LocalConfig)


DEFAULT_CATEGORIES = {
    "bug": "Something does not work as documented",
    "feature": "A request for new behaviour",
    "question": "A request for help or information",
    "docs": "Missing or wrong documentation",
}


class TaxonomyConfig(Section):
    categories: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    priorities: list[str] = Field(default_factory=lambda: ["low", "medium", "high", "critical"])

    @field_validator("categories")
    @classmethod
    def _not_empty(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("at least one category is required")
        return v


class LabelsConfig(Section):
    apply: bool = False
    min_confidence: float = Field(0.8, ge=0, le=1)
    create_missing: bool = False
    map: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "bug": ["bug"],
            "feature": ["enhancement"],
            "question": ["question"],
        }
    )

    def allowlist(self) -> set[str]:
        return {label for labels in self.map.values() for label in labels}


class SlackConfig(Section):
    base_url: HttpUrl = "https://slack.com/api/"
    channel: str = "#triage"
    timeout: float = Field(30.0, gt=0)
    upload_chart: bool = True


class DigestConfig(Section):
    window: str = "1d"
    to: Literal["auto", "slack", "markdown", "html", "stdout"] = "auto"
    out_dir: str = "digests"
    unanswered_after_hours: float = Field(48.0, ge=0)
    top_themes: int = Field(8, ge=1)
    examples_per_theme: int = Field(3, ge=1)
    high_priority: list[str] = Field(default_factory=lambda: ["high", "critical"])


class ThemesConfig(Section):
    window: str = "7d"
    min_cluster_size: int = Field(2, ge=1)
    duplicate_min_similarity: float = Field(0.5, ge=0, le=1)
    duplicate_min_confidence: float = Field(0.7, ge=0, le=1)
    duplicate_neighbours: int = Field(5, ge=1)
    embedding_provider: str = ""  # offline themes also place items by this provider's vectors


class ScheduleConfig(Section):
    timezone: str = "UTC"
    sync: str = "every 15m"
    analyze: str = "every 15m"
    themes: str = "0 * * * *"
    duplicates: str = "30 * * * *"
    digest: str = "0 9 * * MON-FRI"
    labels: str = "every 30m"
    poll: str = "every 5m"


class DaemonConfig(Section):
    """How replicas on one PostgreSQL database share a sync or analyze run (jobs/share.py)."""

    # A claimed unit is the replica's while it renews the lease (every third of it); a replica
    # that died loses it this long after its last renewal, and another replica takes it over.
    lease_seconds: float = Field(120.0, gt=0)
    # Items per analyze unit; 0: [llm] concurrency x max_items_per_call (one round of calls).
    unit_items: int = Field(0, ge=0)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["console", "json"] = "console"


class Config(Section):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    github: GitHubConfig = Field(default_factory=GitHubConfig)
    stackexchange: StackExchangeConfig = Field(default_factory=StackExchangeConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    taxonomy: TaxonomyConfig = Field(default_factory=TaxonomyConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    themes: ThemesConfig = Field(default_factory=ThemesConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


class Secrets(BaseModel):
    """Credentials, read from the environment only so they never land in a file or the DB."""

    github_token: SecretStr | None = None
    stackexchange_key: SecretStr | None = None
    gemini_api_key: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    openai_api_key: SecretStr | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Secrets:
        env = dict(os.environ) if env is None else env

        def get(*names: str) -> SecretStr | None:
            for name in names:
                if env.get(name):
                    return SecretStr(env[name])
            return None

        return cls(
            github_token=get("GITHUB_TOKEN"),
            stackexchange_key=get("STACKEXCHANGE_KEY"),
            gemini_api_key=get("GEMINI_API_KEY", "GOOGLE_API_KEY"),
            slack_bot_token=get("SLACK_BOT_TOKEN"),
            slack_webhook_url=get("SLACK_WEBHOOK_URL"),
            openai_api_key=get("OPENAI_API_KEY"),
        )

    def values(self) -> list[str]:
        """Every secret's plain value, for redaction."""
        out = []
        for v in self.__dict__.values():
            if isinstance(v, SecretStr) and v.get_secret_value():
                out.append(v.get_secret_value())
        return out


def config_path(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get("TRIAGE_CONFIG"):
        return Path(os.environ["TRIAGE_CONFIG"])
    return Path("triage.toml")


def _parse_env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def env_overrides(env: dict[str, str]) -> dict[str, Any]:
    """Turn TRIAGE_<SECTION>__<KEY>=value into a nested dict (keys lower-cased)."""
    out: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in NON_CONFIG_ENV:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split(ENV_DELIMITER)]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} conflicts with another override")
        node[path[-1]] = _parse_env_value(raw)
    return out


def _lists_from_commas(overrides: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """`TRIAGE_GITHUB__REPOS=a/b,c/d` means the list ["a/b", "c/d"] (JSON works as well)."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        field = model.model_fields.get(key)
        kind = field.annotation if field is not None else None
        if isinstance(value, dict) and isinstance(kind, type) and issubclass(kind, BaseModel):
            out[key] = _lists_from_commas(value, kind)
        elif isinstance(value, str) and get_origin(kind) is list:
            out[key] = [part.strip() for part in value.split(",") if part.strip()]
        else:
            out[key] = value
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _origin(loc: tuple[int | str, ...], overrides: dict[str, Any], file: Path) -> str:
    """Where the offending value came from: the environment variable that set it, or the file."""
    node: Any = overrides
    used: list[str] = []
    for part in loc:
        if not isinstance(node, dict) or str(part) not in node:
            break
        node = node[str(part)]
        used.append(str(part))
    if used and not isinstance(node, dict):
        return "environment variable " + ENV_PREFIX + ENV_DELIMITER.join(used).upper()
    return str(file)


def _describe(err: ValidationError, overrides: dict[str, Any], file: Path) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    origin = _origin(first["loc"], overrides, file)
    if first["type"] == "extra_forbidden":
        return f"unknown config key '{loc}' in {origin}"
    msg = first["msg"].removeprefix("Value error, ")
    return f"invalid config value for '{loc}' in {origin}: {msg}"


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Load the TOML file (if present) and apply environment overrides."""
    env = dict(os.environ) if env is None else env
    file = config_path(path)
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"malformed TOML in {file}: {exc}") from None
    elif path is not None:
        raise ConfigError(f"config file {file} does not exist (run `triage init`)")
    overrides = _lists_from_commas(env_overrides(env), Config)
    try:
        return Config.model_validate(_merge(data, overrides))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, overrides, file)) from None
