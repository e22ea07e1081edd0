"""One generateContent answer reduced to what repair needs: text, finish reason, block, usage.

Only a safety-type finish (or a blocked prompt) is a refusal that a person must review. OTHER,
a reason triage does not know, or an answer without content is a failed attempt: repair retries
it like invalid JSON, and the items stay pending with what the model said if it persists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.genai import types

from triage.providers.calls import CallRecord, Reply

# https://ai.google.dev/api/generate-content#FinishReason: the model would not answer this.
REFUSALS = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"}
ANSWERED = {"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"}


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def _usage(response: types.GenerateContentResponse, record: CallRecord) -> None:
    usage = response.usage_metadata
    if usage is None:
        return
    record.input_tokens = usage.prompt_token_count or 0
    record.cached_tokens = usage.cached_content_token_count or 0
    record.thinking_tokens = usage.thoughts_token_count or 0
    # thoughtsTokenCount is not part of candidatesTokenCount, and is billed as output.
    record.output_tokens = (usage.candidates_token_count or 0) + record.thinking_tokens


def reply_from(response: types.GenerateContentResponse, record: CallRecord) -> Reply:
    """Text, finish reason and any block of one answer, with its usage in `record`."""
    _usage(response, record)
    feedback = response.prompt_feedback
    # Gemini sends promptFeedback only when the prompt stopped it from answering at all, and
    # then not always with a blockReason.
    if feedback is not None and (feedback.block_reason is not None or not response.candidates):
        reason = feedback.block_reason or feedback.block_reason_message or "no reason given"
        why = _value(reason) + _ratings(feedback.safety_ratings)
        return Reply(None, record, "BLOCKED", f"prompt blocked by Gemini ({why})")
    if not response.candidates:
        return Reply(None, record, "EMPTY", unusable="an answer without candidates")
    cand = response.candidates[0]
    finish = _value(cand.finish_reason) if cand.finish_reason is not None else "STOP"
    message = f": {cand.finish_message}" if cand.finish_message else ""
    parts = (cand.content.parts if cand.content else None) or []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if finish in REFUSALS:
        why = finish + _ratings(cand.safety_ratings) + message
        return Reply(text, record, finish, f"answer blocked by Gemini ({why})")
    if finish not in ANSWERED:
        return Reply(None, record, finish, unusable=f"finishReason {finish}{message}")
    if not text.strip() and finish == "STOP":
        return Reply(None, record, finish, unusable="finishReason STOP with empty content")
    return Reply(text, record, finish)


def _ratings(ratings: Sequence[types.SafetyRating] | None) -> str:
    hit = [
        _value(r.category) for r in ratings or [] if r.blocked or _value(r.probability) == "HIGH"
    ]
    return f": {', '.join(hit)}" if hit else ""
