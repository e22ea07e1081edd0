"""Apply a label plan through PyGithub: one POST per issue, each write recorded as it happens.

Errors name the issue and what to fix in one line. A refused write is recorded as failed and
retried on the next run; the other issues are still processed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from triage.context import Context
from triage.db.engine import transaction
from triage.errors import ConfigError
from triage.logs import get_logger
from triage.sinks import label_history as history
from triage.sinks.github_labels import LabelPlan, PlannedIssue

log = get_logger("triage.labels")
NEW_LABEL_COLOR = "ededed"


@dataclass
class ApplyResult:
    applied: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line each, for the user

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


def github_client(ctx: Context) -> Any:
    """The PyGithub client, built the way the GitHub source builds it."""
    from triage.sources import github as gh_source

    builder = getattr(gh_source, "make_client", None) or getattr(gh_source, "client", None)
    if builder is not None:
        return builder(ctx)
    from github import Auth, Github, GithubRetry

    cfg, token = ctx.config.github, ctx.secrets.github_token
    return Github(
        auth=Auth.Token(token.get_secret_value()) if token else None,
        base_url=cfg.api_url.rstrip("/"),
        timeout=int(cfg.timeout),
        retry=GithubRetry(total=cfg.max_retries),
        per_page=cfg.per_page,
        lazy=True,
    )


def describe(exc: Exception, what: str, repo: str) -> str:
    """One line for a GitHub refusal, naming the fix."""
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
        extra = f" {errors}" if errors else ""
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
                s, issue.key, label, issue.confidence, issue.analysis_id, status, why
            )


def _repo_labels(repo: Any) -> dict[str, str]:
    return {label.name.lower(): label.name for label in repo.get_labels()}


def _ensure_labels(
    ctx: Context, repo: Any, name: str, wanted: set[str], result: ApplyResult
) -> tuple[dict[str, str], dict[str, str]]:
    """Map each wanted label to the repository's spelling; unusable ones map to why not."""
    existing = _repo_labels(repo)
    usable: dict[str, str] = {}
    unusable: dict[str, str] = {}
    for label in sorted(wanted):
        if label.lower() in existing:
            usable[label] = existing[label.lower()]
        elif not ctx.config.labels.create_missing:
            why = (
                f"label {label!r} does not exist in {name}: create it there"
                " or set [labels] create_missing = true"
            )
            log.warning("label missing in repository; skipped", repo=name, label=label)
            unusable[label] = why
        else:
            try:
                repo.create_label(label, NEW_LABEL_COLOR, "Added by triage")
                result.created.append(f"{name}:{label}")
                usable[label] = label
            except Exception as exc:
                if getattr(exc, "status", None) == 422:  # created meanwhile by someone else
                    usable[label] = label
                else:
                    unusable[label] = describe(exc, f"creating label {label!r} in {name}", name)
    return usable, unusable


def apply_plan(ctx: Context, plan: LabelPlan) -> ApplyResult:
    """Write every planned label; nothing is lost when GitHub refuses some of them."""
    result = ApplyResult()
    if not plan.issues:
        return result
    if ctx.secrets.github_token is None:
        raise ConfigError("writing labels needs GITHUB_TOKEN with write access to issues")
    client = github_client(ctx)
    by_repo: dict[str, list[PlannedIssue]] = defaultdict(list)
    for issue in plan.issues:
        by_repo[issue.repo].append(issue)
    repos = list(by_repo.items())
    for n, (name, issues) in enumerate(repos):
        if not _apply_repo(ctx, client, name, issues, result):
            # Out of quota: the rest stay failed (retried on the next run) instead of hammering.
            why = "GitHub rate limit reached; retried on the next run"
            for _, rest in repos[n + 1 :]:
                for issue in rest:
                    _fail(ctx, issue, issue.labels, why, result)
            break
    return result


def _fail(
    ctx: Context, issue: PlannedIssue, labels: list[str], why: str, result: ApplyResult
) -> None:
    _record(ctx, issue, labels, history.FAILED, why)
    result.failed += [(issue.key, label, why) for label in labels]


def _rate_limited(exc: Exception) -> bool:
    return type(exc).__name__ == "RateLimitExceededException"


def _apply_repo(
    ctx: Context, client: Any, name: str, issues: list[PlannedIssue], result: ApplyResult
) -> bool:
    """Label one repository's issues; False when GitHub's rate limit says to stop for now."""
    wanted = {label for issue in issues for label in issue.labels}
    try:
        repo = client.get_repo(name)
        usable, unusable = _ensure_labels(ctx, repo, name, wanted, result)
    except Exception as exc:
        why = describe(exc, f"listing the labels of {name}", name)
        result.errors.append(why)
        log.error("label write-back failed", repo=name, error=why)
        for issue in issues:
            _fail(ctx, issue, issue.labels, why, result)
        return not _rate_limited(exc)
    result.errors += [w for w in dict.fromkeys(unusable.values()) if "create_missing" not in w]
    for n, issue in enumerate(issues):
        for label in (x for x in issue.labels if x in unusable):
            if "create_missing" in unusable[label]:
                result.skipped.append((issue.key, label, unusable[label]))
                _record(ctx, issue, [label], history.SKIPPED, unusable[label])
            else:
                _fail(ctx, issue, [label], unusable[label], result)
        labels = [label for label in issue.labels if label in usable]
        if not labels:
            continue
        try:
            repo.get_issue(issue.number).add_to_labels(*[usable[label] for label in labels])
        except Exception as exc:
            why = describe(exc, f"labelling {name}#{issue.number}", name)
            result.errors.append(why)
            log.error("label write failed", item=issue.key, error=why)
            _fail(ctx, issue, labels, why, result)
            if _rate_limited(exc):
                for rest in issues[n + 1 :]:
                    _fail(ctx, rest, rest.labels, why, result)
                return False
            continue
        _record(ctx, issue, labels, history.APPLIED, None)
        result.applied += [(issue.key, label) for label in labels]
        log.info("labels added", item=issue.key, labels=labels, confidence=issue.confidence)
    return True
