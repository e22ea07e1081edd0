"""Gemini Batch Mode: inlined batch jobs at half price, collected later by polling.

Each request of a job is one packed prompt carrying its own system instruction (a context cache
could expire before a job runs). Results come back per request, each an answer or an error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Protocol

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from triage.errors import ProviderError
from triage.providers.base import ItemText
from triage.providers.batch_jobs import BatchRequest, JobStatus
from triage.providers.calls import CallFailed, CallRecord
from triage.providers.gemini.replies import raw_answer, reply_from
from triage.providers.gemini.transport import REQUEST_ERRORS

# Inlined requests suit jobs whose total size stays under 20 MB (see "Inline requests" in
# https://ai.google.dev/gemini-api/docs/batch-api); keep a margin for escaping and the envelope.
MAX_JOB_BYTES = 19_000_000
DONE_STATES = {
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EXPIRED",
    "JOB_STATE_PARTIALLY_SUCCEEDED",
}


class Host(Protocol):
    """What these calls use of the GeminiProvider (it passes itself; no import back up)."""

    model: str

    @property
    def client(self) -> genai.Client: ...

    def user_prompt(self, items: Sequence[ItemText], ids: Sequence[str]) -> str: ...

    def generation_config(
        self, schema: type, system: str | None, cache: str | None
    ) -> types.GenerateContentConfig: ...

    def record(self, items: int, batch: bool = False) -> CallRecord: ...

    def price(self, record: CallRecord) -> None: ...

    def failure(self, exc: Exception, record: CallRecord) -> Exception: ...


def build_request(
    p: Host,
    items: Sequence[ItemText],
    ids: Sequence[str],
    system: str,
    schema: type,
    index: int,
) -> BatchRequest:
    user = p.user_prompt(items, ids)
    inlined = types.InlinedRequest(
        contents=user,
        config=p.generation_config(schema, system, None),
        metadata={"request": str(index)},
    )
    schema_size = len(json.dumps(schema.model_json_schema()))  # type: ignore[attr-defined]
    size = len(json.dumps(user)) + len(json.dumps(system)) + schema_size + 512
    return BatchRequest(inlined, size)


def _inlined(request: BatchRequest) -> types.InlinedRequest:
    if not isinstance(request.payload, types.InlinedRequest):
        raise TypeError("a Gemini batch job takes only requests built by build_request")
    return request.payload


def _state(job: types.BatchJob) -> str:
    return str(getattr(job.state, "value", job.state) or "JOB_STATE_UNSPECIFIED")


def _api(p: Host, exc: Exception) -> Exception:
    return p.failure(exc, p.record(0, batch=True))


def create_job(p: Host, requests: Sequence[BatchRequest], display_name: str) -> JobStatus:
    try:
        job = p.client.batches.create(
            model=p.model,
            src=[_inlined(r) for r in requests],
            config=types.CreateBatchJobConfig(display_name=display_name),
        )
    except REQUEST_ERRORS as exc:
        raise _api(p, exc) from None
    if not job.name:
        # Nothing could ever poll it: the caller records the job as failed and frees its items.
        raise ProviderError(
            f"the Gemini Batch API created job {display_name!r} without a name"
            f" (state {_state(job)}); its items are pending again, re-run `triage analyze`"
        )
    return JobStatus(job.name, _state(job), _state(job) in DONE_STATES)


def find_jobs(p: Host, display_name: str) -> list[JobStatus]:
    """Jobs with this display name (to recover one whose creation we did not see finish)."""
    try:
        jobs = list(p.client.batches.list(config=types.ListBatchJobsConfig(page_size=100)))
    except REQUEST_ERRORS as exc:
        raise _api(p, exc) from None
    return [
        JobStatus(j.name or "", _state(j), _state(j) in DONE_STATES)
        for j in jobs
        if j.display_name == display_name and j.name  # a nameless job cannot be polled
    ]


def get_job(p: Host, name: str, sizes: Sequence[int]) -> JobStatus:
    """A job's state, and when it is done, each request's reply or error."""
    started = time.monotonic()
    try:
        job = p.client.batches.get(name=name)
    except REQUEST_ERRORS as exc:
        if isinstance(exc, genai_errors.APIError) and exc.code == 404:
            # The path names the job, not the model: the service deleted or expired the job.
            # It is over, and its items go back in the queue; the other jobs are still polled.
            gone = (
                f"the Gemini Batch API no longer has job {name} (404 NOT_FOUND: expired or deleted)"
            )
            return JobStatus(name, "JOB_STATE_NOT_FOUND", True, gone)
        failure = _api(p, exc)
        if isinstance(failure, CallFailed) and not failure.stop:
            return JobStatus(name, "UNKNOWN", False, failure.reason)
        raise failure from None
    state = _state(job)
    status = JobStatus(name, state, state in DONE_STATES)
    if job.error is not None:
        status.error = str(job.error.message or job.error.code)
    elif status.done and state != "JOB_STATE_SUCCEEDED":
        status.error = f"batch job ended in {state}"
    if not status.done or job.dest is None or job.dest.inlined_responses is None:
        return status
    latency = int((time.monotonic() - started) * 1000)
    status.results = {}
    for position, resp in enumerate(job.dest.inlined_responses):
        index = int((resp.metadata or {}).get("request", position))
        count = sizes[index] if index < len(sizes) else 0
        record = p.record(count, batch=True)
        record.latency_ms = latency
        if resp.error is not None or resp.response is None:
            err = resp.error
            status.results[index] = (
                f"batch request failed: {err.code} {err.message}" if err else "no response"
            )
            continue
        reply = reply_from(raw_answer(resp.response), record)
        p.price(record)
        status.results[index] = reply
    return status
