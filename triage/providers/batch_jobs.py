"""The batch-jobs capability: a provider that runs packed prompts as jobs collected later.

The Batch Mode stage (analysis/batch.py) needs only this: build one request per packed batch,
create a job from requests under a display name, find jobs by that name (to recover a creation
it did not see finish) and get a job's status with each request's answer once it is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from triage.providers.base import Classifier, ItemText
from triage.providers.calls import Reply


@dataclass
class BatchRequest:
    """One request of a job, in the provider's own form, and what it costs in bytes."""

    payload: object
    size: int


@dataclass
class JobStatus:
    name: str
    state: str
    done: bool
    error: str | None = None
    # request index -> its reply, or the error that request got
    results: dict[int, Reply | str] | None = None


def split_jobs(requests: Sequence[BatchRequest], max_bytes: int) -> list[list[BatchRequest]]:
    """Group requests into jobs under a size limit, in order."""
    jobs: list[list[BatchRequest]] = []
    current: list[BatchRequest] = []
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


@runtime_checkable
class BatchJobs(Classifier, Protocol):
    """A classifier that also runs batch jobs; failures raise CallFailed or ConfigError."""

    max_job_bytes: int  # the most one job may carry

    def build_request(
        self,
        items: Sequence[ItemText],
        ids: Sequence[str],
        system: str,
        schema: type,
        index: int,
    ) -> BatchRequest: ...

    def create_job(self, requests: Sequence[BatchRequest], display_name: str) -> JobStatus: ...

    def find_jobs(self, display_name: str) -> list[JobStatus]: ...

    def get_job(self, name: str, sizes: Sequence[int]) -> JobStatus: ...
