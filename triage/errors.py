"""Errors that reach the user as one clear line, with the exit code the CLI contract names."""

from __future__ import annotations


class TriageError(Exception):
    """A failure the user can act on; `str()` is the one-line message."""

    exit_code = 1


class ConfigError(TriageError):
    """Bad usage or configuration (exit code 2)."""

    exit_code = 2


class SchemaOutOfDate(TriageError):
    exit_code = 2


class SourceError(TriageError):
    """A source answered with something we cannot go on from (404, 401, unknown site)."""


class QuotaExhausted(TriageError):
    """A remote quota or rate limit ran out; state is saved and the run can be resumed."""


class Interrupted(TriageError):
    """Stopped by Ctrl-C; what was committed stays and the same command continues from it."""

    exit_code = 130


class BudgetExhausted(TriageError):
    """The configured token budget is spent; state is saved."""


class ProviderError(TriageError):
    """A model provider failed in a way retries cannot fix."""


class DeliveryError(TriageError):
    """A sink (Slack, GitHub labels) refused a write."""


class CheckWarning(Exception):
    """A `triage doctor` check that passes with a caveat: printed as `warn`, exit code 0."""
