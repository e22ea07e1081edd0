"""Start a fake service from tests/fakes/ in a subprocess for the benchmarks."""

from __future__ import annotations

import subprocess
import sys
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
