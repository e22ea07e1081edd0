"""Every `triage` invocation loads the whole command table; heavy libraries must wait until used."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["sklearn", "scipy", "matplotlib", "google.genai", "github", "apscheduler"]


def test_loading_the_cli_does_not_import_heavy_libraries() -> None:
    code = f"import sys, triage.cli\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at start-up: {out.stdout.strip()}"
