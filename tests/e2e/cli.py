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


def triage_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without the developer's triage settings and secrets, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(CLEAN_PREFIXES)}
    return {**base, **(env or {})}


def run_triage(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "triage.cli", *args],
        cwd=cwd,
        env=triage_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
