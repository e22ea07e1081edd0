"""Time windows like "7d" or "12h", aligned so that two runs for the same period agree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from triage.errors import ConfigError

_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_UNITS["w"] = timedelta(weeks=1)
_PATTERN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)


def parse_window(text: str) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` -> timedelta; anything else is a usage error."""
    m = _PATTERN.match(text or "")
    if not m or int(m.group(1)) == 0:
        raise ConfigError(f"invalid window '{text}': use a number and a unit, e.g. 12h, 1d, 7d, 2w")
    try:
        return int(m.group(1)) * _UNITS[m.group(2).lower()]
    except OverflowError:
        raise ConfigError(f"window '{text}' is too long: use a shorter one, e.g. 7d") from None


def parse_instant(text: str) -> datetime:
    """An ISO date or datetime (UTC unless it names an offset) -> naive UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"invalid date/time '{text}': use ISO 8601, e.g. 2025-05-12T09:00Z"
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def align(instant: datetime, length: timedelta) -> datetime:
    """Truncate to the hour (to the minute for windows under an hour).

    Two runs within the same hour build the same window, so the second is recognised as
    already delivered, while a daily run at 09:00 still covers everything up to 09:00.
    """
    if length >= timedelta(hours=1):
        return instant.replace(minute=0, second=0, microsecond=0)
    return instant.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Window:
    """A half-open period [start, end) in naive UTC, with its spec ("7d")."""

    spec: str
    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def shifted(self, periods: int) -> Window:
        """The window `periods` lengths earlier (1 = the previous window)."""
        delta = self.length * periods
        return Window(self.spec, self.start - delta, self.end - delta)

    @classmethod
    def ending(cls, spec: str, until: datetime | None = None) -> Window:
        length = parse_window(spec)
        now = until if until is not None else datetime.now(UTC).replace(tzinfo=None)
        end = align(now, length)
        try:
            start = end - length
        except OverflowError:
            raise ConfigError(
                f"window '{spec}' reaches back before the year 1: use a shorter one, e.g. 7d"
            ) from None
        return cls(spec.strip().lower(), start, end)


def parse_start(text: str, now: datetime | None = None) -> datetime | None:
    """`[github] since` and `[stackexchange] since`: "90d" back from now, a date, or "" (None)."""
    text = (text or "").strip()
    if not text:
        return None
    if _PATTERN.match(text):
        now = now if now is not None else datetime.now(UTC).replace(tzinfo=None)
        return now - parse_window(text)
    return parse_instant(text)
