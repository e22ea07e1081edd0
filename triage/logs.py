"""Structured logging to stderr, with every known secret value redacted before it is written."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_SECRETS: list[str] = []
# Token shapes we redact even when we were not told the value (e.g. a token echoed in a URL).
_TOKEN_PATTERNS = re.compile(
    r"(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{20,}|hooks\.slack\.com/services/[A-Za-z0-9/]+|(?<=key=)[^&\s\"']+)"
)


# Credentials in any URL (a base URL like http://user:secret@host/), as the database URL is masked.
_URL_USERINFO = re.compile(r"(?<=://)[^/\s@'\"<>]+@")


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret:
            text = text.replace(secret, "***")
    text = _URL_USERINFO.sub("***@", text)
    return _TOKEN_PATTERNS.sub("***", text)


def _redact_event(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    return {k: redact(v) if isinstance(v, str) else v for k, v in event.items()}


def configure(level: str = "INFO", fmt: str = "console", secrets: Iterable[str] = ()) -> None:
    _SECRETS[:] = [s for s in secrets if s]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries log through stdlib logging; keep them quiet and redacted.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_StdlibRedactor())


class _StdlibRedactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def get_logger(name: str = "triage") -> Any:
    return structlog.get_logger(name)
