"""`[schedule]` values as APScheduler triggers: crontab lines or "every 15m" intervals."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from triage.errors import ConfigError

OFF = {"off", "never", "disabled", ""}
_EVERY = re.compile(r"every\s+(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
# Interval slots are counted from this instant so that every replica computes the same slots.
ANCHOR = datetime(2000, 1, 3)  # a Monday
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def zone(name: str) -> tzinfo:
    """The configured time zone, or a one-line config error naming it."""
    try:
        return UTC if name.upper() == "UTC" else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"invalid [schedule] timezone {name!r}: use an IANA name such as 'Europe/Paris'"
        ) from None


def interval_seconds(expr: str) -> float | None:
    """Seconds of an "every N<unit>" value, or None when it is not one."""
    m = _EVERY.fullmatch(expr.strip())
    if not m:
        return None
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def _crontab_dow(field: str) -> str:
    """Crontab weekdays (0 and 7 = Sunday) as names, since APScheduler 3 counts 0 as Monday."""
    parts = []
    for part in field.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*" and not step_text:
            parts.append("*")
            continue
        if body == "*":
            lo, hi = 0, 6
        elif re.fullmatch(r"\d+-\d+", body):
            lo, hi = (int(x) for x in body.split("-"))
        elif body.isdigit():
            lo = hi = int(body)
        else:  # names (mon-fri) mean the same to both
            parts.append(part)
            continue
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi):
            raise ValueError(f"day of week {part!r} is out of range 0-7")
        parts.extend(_DAYS[d] for d in range(lo, hi + 1, step))
    return ",".join(dict.fromkeys(parts))


def trigger(job: str, expr: str, tz: tzinfo) -> BaseTrigger | None:
    """The trigger for one job, None when switched off; bad values are a config error."""
    text = expr.strip()
    if text.lower() in OFF:
        return None
    seconds = interval_seconds(text)
    if seconds is not None:
        if seconds < 1:
            raise ConfigError(f"invalid [schedule] {job} = {expr!r}: the shortest interval is 1s")
        anchor = ANCHOR.replace(tzinfo=tz)
        return IntervalTrigger(seconds=seconds, start_date=anchor, timezone=tz)
    fields = text.split()
    try:
        if len(fields) != 5:
            raise ValueError(f"expected 5 crontab fields, got {len(fields)}")
        fields[4] = _crontab_dow(fields[4])
        return CronTrigger(
            minute=fields[0],
            hour=fields[1],
            day=fields[2],
            month=fields[3],
            day_of_week=fields[4],
            timezone=tz,
        )
    except ValueError as exc:
        raise ConfigError(
            f"invalid [schedule] {job} = {expr!r}: {exc}"
            " (use a crontab line like '0 9 * * MON-FRI' or 'every 15m')"
        ) from None


def next_run(trig: BaseTrigger | None, now: datetime | None = None) -> datetime | None:
    """The next fire time after `now` (naive UTC in and out), None when off."""
    if trig is None:
        return None
    current = (now or datetime.now(UTC).replace(tzinfo=None)).replace(tzinfo=UTC)
    nxt = trig.get_next_fire_time(None, current + timedelta(microseconds=1))
    return None if nxt is None else nxt.astimezone(UTC).replace(tzinfo=None)


def slot_name(run_time: datetime) -> str:
    """A scheduled fire time as the slot every replica agrees on."""
    if run_time.tzinfo is not None:
        run_time = run_time.astimezone(UTC).replace(tzinfo=None)
    return run_time.isoformat() + "Z"
