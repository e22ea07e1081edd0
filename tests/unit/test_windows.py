from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from triage.errors import ConfigError
from triage.windows import Window, parse_instant, parse_window


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("1D", timedelta(days=1)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_parse_window(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "0d", "7 days", "-1d", "1y"])
def test_bad_window_is_a_usage_error(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid window"):
        parse_window(text)


def test_runs_in_the_same_hour_build_the_same_window() -> None:
    a = Window.ending("1d", datetime(2025, 5, 12, 9, 0, 4))
    b = Window.ending("1d", datetime(2025, 5, 12, 9, 59, 59))
    assert a == b
    assert a.end == datetime(2025, 5, 12, 9) and a.start == datetime(2025, 5, 11, 9)
    assert Window.ending("1d", datetime(2025, 5, 12, 10, 0, 1)) != a


def test_short_windows_align_to_the_minute() -> None:
    w = Window.ending("30m", datetime(2025, 5, 12, 9, 17, 45))
    assert (w.start, w.end) == (datetime(2025, 5, 12, 8, 47), datetime(2025, 5, 12, 9, 17))


def test_previous_window_is_adjacent() -> None:
    w = Window.ending("7d", datetime(2025, 5, 12, 9))
    prev = w.shifted(1)
    assert prev.end == w.start and prev.length == w.length


def test_parse_instant_converts_offsets_to_utc() -> None:
    assert parse_instant("2025-05-12T11:00+02:00") == datetime(2025, 5, 12, 9)
    assert parse_instant("2025-05-12T09:00Z") == datetime(2025, 5, 12, 9)
    assert parse_instant("2025-05-12") == datetime(2025, 5, 12)
    with pytest.raises(ConfigError, match="ISO 8601"):
        parse_instant("yesterday")
