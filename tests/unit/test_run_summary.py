"""How `triage status` says how long a run took."""

from __future__ import annotations

import pytest

from triage.commands.run_summary import took


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (None, ""),
        (0.04, "0.0 s"),
        (12.34, "12.3 s"),
        (59.96, "1 min 00 s"),
        (245.2, "4 min 05 s"),
        (3599.4, "59 min 59 s"),
        (7380.0, "2 h 03 min"),
    ],
)
def test_took_is_short_and_readable(seconds: float | None, said: str) -> None:
    assert took(seconds) == said
