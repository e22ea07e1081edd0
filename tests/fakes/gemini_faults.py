"""The fake Gemini's faults: real-shaped 429/5xx errors, safety blocks, answers without content.

Mixed into FakeGemini (tests/fakes/gemini.py), whose switches (`safety_mode`,
`finish_other_next`, `empty_content_next`) and `usage` log they use.
"""

from __future__ import annotations

import threading
from typing import Any

from tests.fakes.gemini_store import api_error

# What the fake says in finishMessage beside a SAFETY finish (no recorded answer shows the real
# wording; tests look for this text in the stored reason).
SAFETY_MESSAGE = "The response was blocked because it may contain unsafe content."


class FaultsMixin:
    """fail(), and the blocked / contentless answers generateContent can give."""

    _state_lock: threading.RLock
    usage: list[dict[str, Any]]
    safety_mode: str
    finish_other_next: int
    empty_content_next: int

    def fail(
        self, status: int, times: int = 1, path: str = r":generateContent", retry_delay: str = "0s"
    ) -> None:
        """The next `times` matching requests get a real-shaped 429/500/503 error."""
        if status == 429:
            resp = api_error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [
                            {
                                "quotaMetric": "generativelanguage.googleapis.com/"
                                "generate_content_free_tier_requests",
                                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            }
                        ],
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": retry_delay,
                    },
                ],
            )
        elif status == 503:
            resp = api_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        else:
            resp = api_error(status, "INTERNAL", "An internal error has occurred.")
        self.add_fault(resp, path=path, times=times)

    def _finish_fault(self, usage: dict[str, Any], version: str) -> dict[str, Any] | None:
        """OTHER without content, or STOP with empty content, as recorded real answers show."""
        with self._state_lock:
            if self.finish_other_next > 0:
                self.finish_other_next -= 1
                cand: dict[str, Any] = {
                    "finishReason": "OTHER",
                    "finishMessage": "Model failed to generate content due to internal error.",
                    "index": 0,
                }
            elif self.empty_content_next > 0:
                self.empty_content_next -= 1
                cand = {"content": {"role": "model"}, "finishReason": "STOP", "index": 0}
            else:
                return None
        usage["totalTokenCount"] = usage["promptTokenCount"]
        return {"candidates": [cand], "usageMetadata": usage, "modelVersion": version}

    def _blocked(self, model: str, usage: dict[str, Any]) -> dict[str, Any]:
        usage["totalTokenCount"] = usage["promptTokenCount"]
        ratings = [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
        ]
        with self._state_lock:
            self.usage.append(usage)
        if self.safety_mode == "feedback":
            return {
                "candidates": [],
                "promptFeedback": {"blockReasonMessage": "The prompt was blocked."},
                "modelVersion": model,
            }
        if self.safety_mode == "prompt":
            return {
                "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings},
                "usageMetadata": usage,
                "modelVersion": model,
            }
        return {
            # finishMessage is "populated only when finishReason is set"
            # (https://ai.google.dev/api/generate-content#candidate).
            "candidates": [
                {
                    "finishReason": "SAFETY",
                    "finishMessage": SAFETY_MESSAGE,
                    "index": 0,
                    "safetyRatings": ratings,
                }
            ],
            "usageMetadata": usage,
            "modelVersion": model,
        }
