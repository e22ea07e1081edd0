"""The service examples in the README are what systemd and Docker accept."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_systemd_unit_has_no_comment_after_a_value() -> None:
    # systemd reads `TimeoutStopSec=90  # why` as the value "90  # why" and ignores it.
    [unit] = re.findall(r"```ini\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    settings = [line for line in unit.splitlines() if "=" in line and line[:1] not in "#;"]
    assert "ExecStart" in unit and settings
    assert [line for line in settings if "#" in line] == []
