"""An OpenAI-compatible chat-completions provider (OpenAI, or Gemma served by Ollama or vLLM).

For teams whose item text must stay on their own machines. It shares everything but the wire
format with the Gemini provider: the same prompts, packing, repair and validation, so results
are comparable and the allowlist holds whichever model answers.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from triage.config import Config, OpenAIConfig
from triage.errors import ConfigError, ProviderError, QuotaExhausted
from triage.providers import prompts
from triage.providers.base import ClassifyOutcome, Example, ItemText, ProviderDeps, Taxonomy
from triage.providers.calls import CallFailed, CallRecord, Reply
from triage.providers.openai.http import OpenAIClient, TransientError, model_available
from triage.providers.repair import classify_batches

# Consecutive failed calls (5xx, timeouts) after which the run stops instead of trying on.
MAX_FAILED_CALLS = 3
SCHEMA_NAME = "triage_batch"
NAME = "openai"
# A 400 saying the prompt does not fit the context window (vLLM, OpenAI, llama.cpp wording).
_TOO_LONG = re.compile(r"maximum context length|context_length_exceeded|context window", re.I)
# Keywords strict structured outputs reject; pydantic emits some of them.
_UNSUPPORTED = ("default", "title")


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema as strict mode wants it: every object closed, every property required."""

    def fix(node: Any) -> Any:
        if isinstance(node, list):
            return [fix(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: fix(v) for k, v in node.items() if k not in _UNSUPPORTED or k == "properties"}
        if "properties" in node:  # property names may be "title" or "default": keep them all
            out["properties"] = {k: fix(v) for k, v in node["properties"].items()}
            out["required"] = list(node["properties"])
            out["additionalProperties"] = False
        return out

    result: dict[str, Any] = fix(copy.deepcopy(schema))
    return result


def response_format(taxonomy: Taxonomy) -> dict[str, Any]:
    """The `response_format` of every call: the shared answer model as a strict JSON schema."""
    schema = prompts.response_model(taxonomy).model_json_schema()
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "schema": strict_schema(schema), "strict": True},
    }


def cost_usd(cfg: OpenAIConfig, prompt: int, output: int) -> float:
    """Estimated cost from the configured prices (0 for a server you run yourself)."""
    return (prompt * cfg.input_price + output * cfg.output_price) / 1_000_000


def make_client(cfg: OpenAIConfig, api_key: str | None, **kw: Any) -> OpenAIClient:
    return OpenAIClient(
        cfg.base_url, api_key, timeout=cfg.timeout, max_retries=cfg.max_retries, **kw
    )


class OpenAIProvider:
    """Classifies packed batches with one structured-output chat completion each."""

    name = NAME

    def __init__(
        self,
        config: Config,
        api_key: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = config.llm.openai
        self.llm = config.llm
        self.model = self.cfg.model
        self.prompt_version = prompts.PROMPT_VERSION
        self.client = make_client(self.cfg, api_key, sleep=sleep)
        self._failed_calls = 0

    def classify(
        self, items: Sequence[ItemText], taxonomy: Taxonomy, examples: Sequence[Example]
    ) -> ClassifyOutcome:
        system = prompts.system_instruction(taxonomy, examples)
        fmt = response_format(taxonomy)
        batches = prompts.pack_for(items, taxonomy, examples, self.llm)

        def call(its: Sequence[ItemText], ids: Sequence[str]) -> Reply:
            return self._call(its, ids, system, fmt)

        return classify_batches(batches, call, taxonomy)

    def payload(
        self, items: Sequence[ItemText], ids: Sequence[str], system: str, fmt: dict[str, Any]
    ) -> dict[str, Any]:
        """The chat-completions request body for one batch."""
        rendered = [
            prompts.render_item(i, it, self.llm.max_item_chars)
            for i, it in zip(ids, items, strict=True)
        ]
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": prompts.user_prompt(rendered)},
            ],
            "response_format": fmt,
            "temperature": 0,  # classification wants the most likely answer, every time
        }

    def _call(
        self, items: Sequence[ItemText], ids: Sequence[str], system: str, fmt: dict[str, Any]
    ) -> Reply:
        record = CallRecord(self.name, self.model, self.prompt_version, items=len(items))
        return self._send(self.payload(items, ids, system, fmt), record)

    def generate_json(
        self, system: str, user: str, schema: type, purpose: str, prompt_version: str, items: int
    ) -> Reply:
        """One structured-output call for another purpose (themes); errors as for classify."""
        model_schema = getattr(schema, "model_json_schema", None)
        if model_schema is None:
            raise ConfigError(f"{purpose}: the answer schema must be a pydantic model")
        payload = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": f"triage_{purpose}"[:64],
                    "schema": strict_schema(model_schema()),
                    "strict": True,
                },
            },
            "temperature": 0,
        }
        record = CallRecord(self.name, self.model, prompt_version, purpose=purpose, items=items)
        return self._send(payload, record)

    def _send(self, payload: dict[str, Any], record: CallRecord) -> Reply:
        """One call, its usage and price in `record`; failures mapped for the repair loop."""
        started = time.monotonic()
        try:
            chat = self.client.chat(payload)
        except ConfigError:
            raise  # wrong key or model: every call would fail the same way
        except QuotaExhausted as exc:
            raise self._failed(record, started, str(exc), stop=True) from None
        except TransientError as exc:
            self._failed_calls += 1
            stop = self._failed_calls >= MAX_FAILED_CALLS
            why = str(exc) + ("; stopping after repeated failures" if stop else "")
            raise self._failed(record, started, why, stop=stop) from None
        except ProviderError as exc:  # a 4xx about this request: the other batches may pass
            if _TOO_LONG.search(str(exc)):  # vLLM/OpenAI: prompt + answer exceed the context
                record.outcome, record.error = "too_long", str(exc)[:500]
                record.latency_ms = int((time.monotonic() - started) * 1000)
                return Reply(None, record, "MAX_TOKENS")  # repair splits the batch
            self._failed_calls += 1  # the same refusal batch after batch: stop asking
            stop = self._failed_calls >= MAX_FAILED_CALLS
            why = f"the server refused the request: {exc}"
            raise self._failed(record, started, why, stop=stop) from None
        self._failed_calls = 0
        record.latency_ms = chat.latency_ms
        record.input_tokens = chat.prompt_tokens
        record.cached_tokens = chat.cached_tokens
        record.output_tokens = chat.completion_tokens
        record.cost_usd = cost_usd(self.cfg, chat.prompt_tokens, chat.completion_tokens)
        if chat.finish_reason == "content_filter":
            return Reply(chat.content, record, "BLOCKED", "answer blocked by the content filter")
        if chat.refusal:
            return Reply(None, record, "BLOCKED", f"the model refused: {chat.refusal[:200]}")
        finish = "MAX_TOKENS" if chat.finish_reason == "length" else "STOP"
        return Reply(chat.content, record, finish)

    def _failed(
        self, record: CallRecord, started: float, why: str, stop: bool = False
    ) -> CallFailed:
        record.outcome = "error"
        record.error = why[:500]
        record.latency_ms = int((time.monotonic() - started) * 1000)
        return CallFailed(why, record, stop)

    def check_model(self) -> str:
        """A one-line description of the served model; ConfigError with close names if absent."""
        available = self.client.models()
        if not model_available(self.model, available):
            raise self.client.unknown_model_error(self.model, available)
        return f"model '{self.model}' served by {self.cfg.base_url} ({len(available)} models)"

    def close(self) -> None:
        """End the run: close the connections and count failures afresh next time."""
        self.client.close()
        self._failed_calls = 0


def quick_provider(ctx: ProviderDeps) -> OpenAIProvider:
    """A provider for `triage doctor`: one retry at most, a short timeout."""
    key = ctx.secrets.openai_api_key
    cfg = ctx.config.llm.openai
    quick = cfg.model_copy(
        update={"max_retries": min(cfg.max_retries, 1), "timeout": min(cfg.timeout, 30.0)}
    )
    return OpenAIProvider(
        ctx.config.model_copy(update={"llm": ctx.config.llm.model_copy(update={"openai": quick})}),
        key.get_secret_value() if key else None,
    )


def doctor_check(ctx: ProviderDeps) -> str:
    """`triage doctor`: the server answers GET /models and lists the configured model."""
    if ctx.config.llm.provider != NAME:
        return f"skipped ([llm] provider is {ctx.config.llm.provider})"
    provider = quick_provider(ctx)
    try:
        return provider.check_model()
    finally:
        provider.close()
