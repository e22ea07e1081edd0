"""One generateContent answer reduced to what repair needs: text, finish reason, block, usage.

Only a safety-type finish (or a blocked prompt) is a refusal that a person must review. OTHER,
a reason triage does not know, or an answer without content is a failed attempt: repair retries
it like invalid JSON, and the items stay pending with what the model said if it persists.

The answer is read as the JSON the API sent (camelCase), not as google-genai's parsed object:
google-genai drops a candidate's `finishMessage` on the Gemini API
(https://github.com/googleapis/python-genai/issues/2049; still so in 3.6.1), and that message
is what tells a user why the model stopped.
"""

from __future__ import annotations

import json
from typing import Any

from google.genai import types

from triage.providers.calls import CallRecord, Reply

# https://ai.google.dev/api/generate-content#FinishReason: the model would not answer this.
REFUSALS = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"}
ANSWERED = {"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"}


def raw_answer(response: types.GenerateContentResponse) -> dict[str, Any]:
    """The answer as sent: the raw body when the call asked for it, else the parsed object.

    Raises json.JSONDecodeError for a body cut short, like google-genai's own parsing.
    """
    http = response.sdk_http_response
    if http is not None and http.body is not None:
        body = json.loads(http.body) if http.body else {}
        return body if isinstance(body, dict) else {}
    return response.model_dump(mode="json", by_alias=True, exclude_none=True)


def _dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _usage(answer: dict[str, Any], record: CallRecord) -> None:
    usage = _dict(answer.get("usageMetadata"))
    if not usage:
        return
    record.input_tokens = int(usage.get("promptTokenCount") or 0)
    record.cached_tokens = int(usage.get("cachedContentTokenCount") or 0)
    record.thinking_tokens = int(usage.get("thoughtsTokenCount") or 0)
    # thoughtsTokenCount is not part of candidatesTokenCount, and is billed as output.
    record.output_tokens = int(usage.get("candidatesTokenCount") or 0) + record.thinking_tokens


def reply_from(answer: dict[str, Any], record: CallRecord) -> Reply:
    """Text, finish reason and any block of one answer (raw JSON), with its usage in `record`."""
    _usage(answer, record)
    feedback = answer.get("promptFeedback")
    candidates = [c for c in answer.get("candidates") or [] if isinstance(c, dict)]
    # Gemini sends promptFeedback only when the prompt stopped it from answering at all, and
    # then not always with a blockReason.
    if isinstance(feedback, dict) and (feedback.get("blockReason") or not candidates):
        reason = (
            feedback.get("blockReason") or feedback.get("blockReasonMessage") or "no reason given"
        )
        why = str(reason) + _ratings(feedback.get("safetyRatings"))
        return Reply(None, record, "BLOCKED", f"prompt blocked by Gemini ({why})")
    if not candidates:
        return Reply(None, record, "EMPTY", unusable="an answer without candidates")
    cand = candidates[0]
    finish = str(cand.get("finishReason") or "STOP")
    message = f": {cand['finishMessage']}" if cand.get("finishMessage") else ""
    parts = [p for p in _dict(cand.get("content")).get("parts") or [] if isinstance(p, dict)]
    text = "".join(str(p["text"]) for p in parts if p.get("text") and not p.get("thought"))
    if finish in REFUSALS:
        why = finish + _ratings(cand.get("safetyRatings")) + message
        return Reply(text, record, finish, f"answer blocked by Gemini ({why})")
    if finish not in ANSWERED:
        return Reply(None, record, finish, unusable=f"finishReason {finish}{message}")
    if not text.strip() and finish == "STOP":
        return Reply(None, record, finish, unusable="finishReason STOP with empty content")
    return Reply(text, record, finish)


def _ratings(ratings: Any) -> str:
    hit = [
        str(r.get("category"))
        for r in ratings or []
        if isinstance(r, dict) and (r.get("blocked") or r.get("probability") == "HIGH")
    ]
    return f": {', '.join(hit)}" if hit else ""
