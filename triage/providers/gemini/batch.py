"""Gemini Batch Mode: inlined batch jobs at half price, collected later by polling.

Each request of a job is one packed prompt carrying its own system instruction (a context cache
could expire before a job runs). Results come back per request, each an answer or an error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from google.genai import errors as genai_errors
from google.genai import types

from triage.errors import ProviderError
from triage.providers.base import ItemText
from triage.providers.calls import CallFailed, Reply
from triage.providers.gemini.provider import GeminiProvider
from triage.providers.gemini.replies import reply_from

# Inlined jobs must stay under 20 MB; keep a margin for JSON escaping and the envelope.
MAX_JOB_BYTES = 19_000_000
DONE_STATES = {
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EXPIRED",
    "JOB_STATE_PARTIALLY_SUCCEEDED",
}


@dataclass
class Request:
    """One inlined request and what it costs in bytes."""

    inlined: types.InlinedRequest
    size: int


@dataclass
class JobStatus:
    name: str
    state: str
    done: bool
    error: str | None = None
    # request index -> its reply, or the error that request got
    results: dict[int, Reply | str] | None = None


def build_request(
    p: GeminiProvider,
    items: Sequence[ItemText],
    ids: Sequence[str],
    system: str,
    schema: type,
    index: int,
) -> Request:
    user = p.user_prompt(items, ids)
    inlined = types.InlinedRequest(
        contents=user,
        config=p.generation_config(schema, system, None),
        metadata={"request": str(index)},
    )
    schema_size = len(json.dumps(schema.model_json_schema()))  # type: ignore[attr-defined]
    size = len(json.dumps(user)) + len(json.dumps(system)) + schema_size + 512
    return Request(inlined, size)


def split_jobs(requests: Sequence[Request], max_bytes: int = MAX_JOB_BYTES) -> list[list[Request]]:
    """Group requests into jobs under the inline size limit, in order."""
    jobs: list[list[Request]] = []
    current: list[Request] = []
    used = 0
    for req in requests:
        if current and used + req.size > max_bytes:
            jobs.append(current)
            current, used = [], 0
        current.append(req)
        used += req.size
    if current:
        jobs.append(current)
    return jobs


def _state(job: types.BatchJob) -> str:
    return str(getattr(job.state, "value", job.state) or "JOB_STATE_UNSPECIFIED")


def _api(p: GeminiProvider, exc: Exception) -> Exception:
    return p.failure(exc, p.record(0, batch=True))


def create_job(p: GeminiProvider, requests: Sequence[Request], display_name: str) -> JobStatus:
    try:
        job = p.client.batches.create(
            model=p.model,
            src=[r.inlined for r in requests],
            config=types.CreateBatchJobConfig(display_name=display_name),
        )
    except (genai_errors.APIError, httpx.HTTPError) as exc:
        raise _api(p, exc) from None
    if not job.name:
        # Nothing could ever poll it: the caller records the job as failed and frees its items.
        raise ProviderError(
            f"the Gemini Batch API created job {display_name!r} without a name"
            f" (state {_state(job)}); its items are pending again, re-run `triage analyze`"
        )
    return JobStatus(job.name, _state(job), _state(job) in DONE_STATES)


def find_jobs(p: GeminiProvider, display_name: str) -> list[JobStatus]:
    """Jobs with this display name (to recover one whose creation we did not see finish)."""
    try:
        jobs = list(p.client.batches.list(config=types.ListBatchJobsConfig(page_size=100)))
    except (genai_errors.APIError, httpx.HTTPError) as exc:
        raise _api(p, exc) from None
    return [
        JobStatus(j.name or "", _state(j), _state(j) in DONE_STATES)
        for j in jobs
        if j.display_name == display_name and j.name  # a nameless job cannot be polled
    ]


def get_job(p: GeminiProvider, name: str, sizes: Sequence[int]) -> JobStatus:
    """A job's state, and when it is done, each request's reply or error."""
    started = time.monotonic()
    try:
        job = p.client.batches.get(name=name)
    except (genai_errors.APIError, httpx.HTTPError) as exc:
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
        reply = reply_from(resp.response, record)
        p.price(record)
        status.results[index] = reply
    return status
