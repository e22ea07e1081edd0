from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from triage import doctor
from triage.commands.common import Runtime
from triage.context import Context
from triage.errors import SourceError


def test_a_check_that_breaks_is_one_failed_line_and_the_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRIAGE_DATABASE__URL", f"sqlite:///{tmp_path / 'triage.db'}")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_abcdefghijklmnopqrstuvwxyz")

    def broken(ctx: Context) -> str:
        raise KeyError("ghp_abcdefghijklmnopqrstuvwxyz")

    def refused(ctx: Context) -> str:
        raise SourceError("refused")

    checks = [("broken", broken), ("refused", refused), ("after", lambda ctx: "fine")]
    monkeypatch.setattr(doctor, "CHECKS", checks)

    assert doctor.run_checks(Runtime()) is False

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok   config: no triage.toml: defaults and TRIAGE_* environment"
    assert out[1:] == [
        "fail broken: unexpected KeyError: '***'",
        "fail refused: refused",
        "ok   after: fine",
    ]


def test_the_skipped_embeddings_check_loads_no_scikit_learn(tmp_path: Path) -> None:
    # A fresh interpreter: the test process itself may have loaded scikit-learn already.
    code = (
        "import sys\n"
        "from triage import doctor\n"
        "from triage.config import Config, Secrets\n"
        "from triage.context import Context\n"
        "check = dict(doctor.CHECKS)['gemini embeddings']\n"
        "print(check(Context(Config(), Secrets())))\n"
        "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].startswith("skipped")
    assert out[1] == "[]"
