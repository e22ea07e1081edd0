"""Apply a label plan through PyGithub: one POST per issue, each write recorded as it happens.

Applying is also when the human corrections the plan saw are recorded (planning writes nothing).

Errors name the issue and what to fix in one line. A refused write is recorded as failed and
retried on the next run; the other issues are still processed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import requests
from github import GithubException
from github.Requester import Requester

from triage.clients.github import GitHubClient, error_message
from triage.context import Context
from triage.db import label_history as history
from triage.db.engine import transaction
from triage.errors import ConfigError, QuotaExhausted, TriageError
from triage.logs import get_logger
from triage.sinks.labels.plan import LabelPlan, PlannedIssue

log = get_logger("triage.labels")
NEW_LABEL_COLOR = "ededed"
CREATED_BY = "Added by triage"
T = TypeVar("T")


@dataclass
class ApplyResult:
    applied: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line each, for the user
    stopped: str | None = None  # why writing paused before the end of the plan

    def counts(self) -> dict[str, int]:
        return {
            "applied": len(self.applied),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "labels_created": len(self.created),
        }

    def failure_summary(self) -> str:
        first = self.errors[0] if self.errors else "label writes failed"
        more = f" (+{len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return f"{len(self.failed)} label writes failed: {first}{more}"


def describe(exc: Exception, what: str, repo: str) -> str:
    """One line for a GitHub refusal, naming the fix."""
    if isinstance(exc, TriageError):  # already one line from the client's retry policy
        return str(exc)
    status = getattr(exc, "status", None)
    data = getattr(exc, "data", None)
    message = data.get("message") if isinstance(data, dict) else None
    detail = f"{status} {message}" if message else str(status)
    if status == 401:
        return f"GitHub rejected the token ({detail}) while {what}: check GITHUB_TOKEN"
    if status == 403:
        return (
            f"GitHub refused {what} ({detail}): the token needs write access to issues"
            f" in {repo} (Issues: read and write)"
        )
    if status == 404:
        return (
            f"GitHub found nothing while {what} (404): the issue or repository was deleted,"
            " transferred, or is not visible to the token"
        )
    if status == 410:
        return f"GitHub refused {what} (410): issues are disabled in {repo}"
    if status == 422:
        errors = data.get("errors") if isinstance(data, dict) else None
        parts = [
            " ".join(str(e.get(k)) for k in ("resource", "field", "code") if e.get(k))
            if isinstance(e, dict)
            else str(e)
            for e in errors or []
        ]
        extra = f": {'; '.join(parts)}" if parts else ""
        return f"GitHub rejected {what} (422 {message or 'Validation Failed'}){extra}"
    if status is None:
        return f"could not reach GitHub while {what}: {type(exc).__name__}: {exc}"
    return f"GitHub error while {what}: {detail}"


def _record(
    ctx: Context, issue: PlannedIssue, labels: list[str], status: str, why: str | None
) -> None:
    with transaction(ctx.sessions) as s:
        for label in labels:
            history.record_write(
                s,
                issue.key,
                label,
                issue.confidence,
                issue.analysis_id,
                status,
                why,
                issue.item_updated_at,
            )


class _Stop(Exception):
    """Stop writing for now (quota spent, or the daemon is shutting down); the rest waits."""


def _call(client: GitHubClient, fn: Callable[[], T], what: str) -> T:
    try:
        return client.call(fn, what)
    except QuotaExhausted as exc:
        raise _Stop(str(exc)) from None
    except GithubException as exc:
        if exc.status in (403, 429) and Requester.isRateLimitError(error_message(exc)):
            raise _Stop(
                f"GitHub rate limit reached while {what}; retried on the next run"
            ) from None
        raise


def _ensure_labels(
    ctx: Context, client: GitHubClient, repo: Any, wanted: set[str], result: ApplyResult
) -> tuple[dict[str, str], dict[str, str]]:
    """Map each wanted label to the repository's spelling; unusable ones map to why not."""
    name = repo.full_name
    listed = _call(client, lambda: list(repo.get_labels()), f"listing the labels of {name}")
    existing = {label.name.lower(): label.name for label in listed}
    usable: dict[str, str] = {}
    unusable: dict[str, str] = {}
    for label in sorted(wanted):
        if label.lower() in existing:
            usable[label] = existing[label.lower()]
        elif not ctx.config.labels.create_missing:
            log.warning("label missing in repository; skipped", repo=name, label=label)
            unusable[label] = (
                f"label {label!r} does not exist in {name}: create it there"
                " or set [labels] create_missing = true"
            )
        else:
            what = f"creating label {label!r} in {name}"
            try:
                _call(client, partial(repo.create_label, label, NEW_LABEL_COLOR, CREATED_BY), what)
                result.created.append(f"{name}:{label}")
                usable[label] = label
            except GithubException as exc:
                if exc.status == 422:  # created meanwhile by someone else
                    usable[label] = label
                else:
                    unusable[label] = describe(exc, what, name)
    return usable, unusable


def apply(
    ctx: Context, plan: LabelPlan, should_stop: Callable[[], bool] | None = None
) -> ApplyResult:
    """Write every planned label; nothing is lost when GitHub refuses some of them."""
    result = ApplyResult()
    with transaction(ctx.sessions) as s:
        for key, label in history.record_corrections(s):
            log.info("label removed by a human; never adding it again", item=key, label=label)
    if not plan.issues:
        return result
    if ctx.secrets.github_token is None:
        raise ConfigError("writing labels needs GITHUB_TOKEN with write access to issues")
    client = ctx.github
    by_repo: dict[str, list[PlannedIssue]] = defaultdict(list)
    for issue in plan.issues:
        by_repo[issue.repo].append(issue)
    try:
        for name, issues in by_repo.items():
            _apply_repo(ctx, client, name, issues, result, should_stop or (lambda: False))
    except _Stop as stop:
        result.stopped = str(stop)
        log.warning("label write-back paused; the rest is written on the next run", why=str(stop))
    return result


def _fail(
    ctx: Context,
    issue: PlannedIssue,
    labels: list[str],
    why: str,
    result: ApplyResult,
    status: str = history.FAILED,
) -> None:
    _record(ctx, issue, labels, status, why)
    result.failed += [(issue.key, label, why) for label in labels]
    if why not in result.errors:
        result.errors.append(why)


def _apply_repo(
    ctx: Context,
    client: GitHubClient,
    name: str,
    issues: list[PlannedIssue],
    result: ApplyResult,
    should_stop: Callable[[], bool],
) -> None:
    """Label one repository's issues, one POST per issue (it adds, it never removes)."""
    wanted = {label for issue in issues for label in issue.labels}
    try:
        repo = _call(client, lambda: client.github.get_repo(name), f"opening {name}")
        usable, unusable = _ensure_labels(ctx, client, repo, wanted, result)
    except (GithubException, TriageError, requests.RequestException) as exc:
        why = describe(exc, f"listing the labels of {name}", name)
        log.error("label write-back failed", repo=name, error=why)
        for issue in issues:
            _fail(ctx, issue, issue.labels, why, result)
        return
    for issue in issues:
        if should_stop():
            raise _Stop("the daemon is stopping")
        for label in (x for x in issue.labels if x in unusable):
            if "create_missing" in unusable[label]:
                result.skipped.append((issue.key, label, unusable[label]))
                _record(ctx, issue, [label], history.SKIPPED, unusable[label])
            else:
                _fail(ctx, issue, [label], unusable[label], result)
        labels = [label for label in issue.labels if label in usable]
        if labels:
            _write(ctx, client, repo, issue, [usable[x] for x in labels], result)


def _write(
    ctx: Context,
    client: GitHubClient,
    repo: Any,
    issue: PlannedIssue,
    labels: list[str],
    result: ApplyResult,
) -> None:
    what = f"labelling {repo.full_name}#{issue.number}"
    missing: list[str] = []
    try:
        live = _call(client, lambda: repo.get_issue(issue.number), what)
        allow = {label.lower() for label in ctx.config.labels.allowlist()}
        on_issue = {x.name.lower() for x in live.labels}
        human = sorted(on_issue & allow - set(issue.kept) - set(issue.intended))
        if human:  # triaged by hand since the last sync: never touch it
            why = f"labelled by a human since the last sync ({', '.join(human)})"
            log.info("issue left alone", item=issue.key, reason=why)
            result.skipped += [(issue.key, label, why) for label in labels]
            _record(ctx, issue, labels, history.SKIPPED, why)
            return
        # A label a stopped run meant to write and that is there was written by it: not again.
        missing = [label for label in labels if label.lower() not in on_issue]
        if missing:
            _record(ctx, issue, missing, history.INTENDED, None)  # before the write goes out
            _call(client, lambda: live.add_to_labels(*missing), what)
    except (GithubException, TriageError, requests.RequestException) as exc:
        why = describe(exc, what, repo.full_name)
        log.error("label write failed", item=issue.key, error=why)
        # GitHub said no: failed. No answer (timeout, connection lost): it may have landed, so
        # the intent stays and the next run checks the issue first.
        unsure = not isinstance(exc, GithubException) and missing
        _fail(ctx, issue, labels, why, result, history.INTENDED if unsure else history.FAILED)
        return
    _record(ctx, issue, labels, history.APPLIED, None)
    result.applied += [(issue.key, label) for label in labels]
    log.info("labels added", item=issue.key, labels=labels, confidence=issue.confidence)
