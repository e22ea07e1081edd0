"""One Gemini answer as a Reply: its text, finish reason, any block, and its token usage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.genai import types

from triage.providers.calls import CallRecord, Reply


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def reply_from(response: types.GenerateContentResponse, record: CallRecord) -> Reply:
    """Text, finish reason and any block of one answer, with its usage in `record`."""
    usage = response.usage_metadata
    if usage is not None:
        record.input_tokens = usage.prompt_token_count or 0
        record.cached_tokens = usage.cached_content_token_count or 0
        record.output_tokens = (usage.candidates_token_count or 0) + (
            usage.thoughts_token_count or 0
        )
    feedback = response.prompt_feedback
    # Gemini sends promptFeedback only when the prompt stopped it from answering at all, and
    # then not always with a blockReason.
    if feedback is not None and (feedback.block_reason is not None or not response.candidates):
        reason = feedback.block_reason or feedback.block_reason_message or "no reason given"
        why = _value(reason) + _ratings(feedback.safety_ratings)
        return Reply(None, record, "BLOCKED", f"prompt blocked by Gemini ({why})")
    if not response.candidates:
        return Reply(None, record, "EMPTY")
    cand = response.candidates[0]
    finish = _value(cand.finish_reason) if cand.finish_reason is not None else "STOP"
    parts = (cand.content.parts if cand.content else None) or []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if finish in ("STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"):
        return Reply(text, record, finish)
    why = finish + _ratings(cand.safety_ratings)
    return Reply(text, record, finish, f"answer blocked by Gemini ({why})")


def _ratings(ratings: Sequence[types.SafetyRating] | None) -> str:
    hit = [
        _value(r.category) for r in ratings or [] if r.blocked or _value(r.probability) == "HIGH"
    ]
    return f": {', '.join(hit)}" if hit else ""
