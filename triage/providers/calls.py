"""One model call: what it cost (stored in llm_calls), what it answered, how it failed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CallRecord:
    """Accounting for one model call, stored in llm_calls."""

    provider: str
    model: str
    prompt_version: str
    purpose: str = "classify"
    items: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0  # answer and thinking: both are billed as output
    thinking_tokens: int = 0  # of output_tokens, those the model spent thinking
    latency_ms: int = 0
    outcome: str = "ok"
    error: str | None = None
    cost_usd: float = 0.0
    batch_mode: bool = False


@dataclass
class Reply:
    """One model answer, reduced to what repair needs."""

    text: str | None
    record: CallRecord
    finish: str = "STOP"  # STOP | MAX_TOKENS | anything else the provider reports
    blocked: str | None = None  # why the model refused (safety filter, prompt block)
    # What the model answered when it gave nothing usable (e.g. "finishReason OTHER: ..."):
    # retried like invalid JSON, and said when the items stay pending.
    unusable: str | None = None


class CallFailed(Exception):
    """A call that failed after its retries; `stop` means later calls would fail too."""

    def __init__(self, reason: str, record: CallRecord | None = None, stop: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.record = record
        self.stop = stop
