"""Subprocesses for the benchmarks: a fake service from tests/fakes/, a measured `triage` run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_fake(
    module: str, *args: str, preload: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], str]:
    """Run `module`'s main on a free port; return the process and the URL it printed.

    `preload` names modules imported first (e.g. tests.fakes.themes_model, which teaches the
    fake Gemini to answer themes prompts).
    """
    imports = "".join(f"import {name}; " for name in preload)
    proc = subprocess.Popen(
        [sys.executable, "-c", f"{imports}from {module} import main; main()", *args, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"{module} did not start: {url!r}")
    return proc, url


def run_measured(args: list[str], env: dict[str, str], cwd: Path) -> tuple[str, float, float, int]:
    """`triage ARGS`: its output, wall seconds, peak RSS in MB (from wait4) and exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    return out, seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)
