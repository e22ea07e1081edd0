"""Run the real `triage` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLEAN_PREFIXES = (
    "TRIAGE_",
    "GITHUB_TOKEN",
    "STACKEXCHANGE_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "SLACK_",
    "OPENAI_API_KEY",
)


def run_triage(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(CLEAN_PREFIXES)}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "triage.cli", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
