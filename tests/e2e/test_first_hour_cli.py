"""The rough edges a new user meets in the first hour, as the user meets them (subprocesses)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.github import FakeGitHub
from triage.cli import command

from .cli import run_triage

# Long enough that an 80-column table would cut its cursor names.
REPO = "octo-organisation/issues-from-long-ago"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repo(REPO, issues=30)  # issues from 2020: far older than any window
        yield fake


def _env(tmp_path: Path, gh: FakeGitHub, **extra: str) -> dict[str, str]:
    return {
        "TRIAGE_DATABASE__URL": f"sqlite:///{tmp_path / 'triage.db'}",
        "TRIAGE_GITHUB__API_URL": gh.base_url,
        "TRIAGE_GITHUB__REPOS": f"{REPO},octo/other",  # a plain list, no JSON
        "TRIAGE_STACKEXCHANGE__TAGS": "",
        **extra,
    }


def test_the_first_digest_after_a_backfill_of_old_items_shows_them(
    tmp_path: Path, gh: FakeGitHub
) -> None:
    env = _env(tmp_path, gh)
    assert run_triage("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    assert run_triage("backfill", "github", REPO, cwd=tmp_path, env=env).returncode == 0
    themes = run_triage("themes", cwd=tmp_path, env=env)
    assert themes.returncode == 0, themes.stderr
    said = "nothing new to theme in 7d; 30 items stored, the newest from 2020-01-02"
    assert said in themes.stdout
    assert "try `triage themes --window" in themes.stdout
    r = run_triage("digest", "--to", "markdown", "--out", "d.md", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "d.md").read_text(encoding="utf-8")
    assert "**30 new items" in text and "everything stored, as the first digest here" in text
    assert "| GitHub | 30 |" in text
    # The next one covers what came since: nothing new, and it says what is stored.
    later = run_triage("digest", "--to", "stdout", "--window", "1d", cwd=tmp_path, env=env)
    assert "0 new items" in later.stdout and "try `triage digest --window" in later.stdout
    assert "## By category" not in later.stdout  # empty sections are left out


def test_a_missing_gemini_key_means_the_local_provider_for_every_command(
    tmp_path: Path, gh: FakeGitHub
) -> None:
    env = _env(tmp_path, gh)  # [llm] provider = gemini (the default), no GEMINI_API_KEY
    assert run_triage("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    assert run_triage("backfill", "github", REPO, cwd=tmp_path, env=env).returncode == 0
    analyze = run_triage("analyze", cwd=tmp_path, env=env)
    assert analyze.returncode == 0, analyze.stderr
    assert "local/" in analyze.stdout and "30 analysed" in analyze.stdout
    said = [x for x in analyze.stderr.splitlines() if "GEMINI_API_KEY is not set" in x]
    assert len(said) == 1 and "analysing with the local provider" in said[0]
    # Piped output (not a terminal): tables are as wide as their text, never cut.
    status = run_triage("status", cwd=tmp_path, env=env)
    assert f"backfill:github:{REPO}" in status.stdout and "…" not in status.stdout
    doctor = run_triage("doctor", cwd=tmp_path, env={**env, "TRIAGE_GITHUB__REPOS": ""})
    assert doctor.returncode == 0, doctor.stdout
    assert "warn credentials: GEMINI_API_KEY is not set: analysing with the local" in doctor.stdout
    assert "fail" not in doctor.stdout


def test_no_command_but_init_and_db_upgrade_creates_a_database(tmp_path: Path) -> None:
    for args in (("status",), ("digest",)):
        r = run_triage(*args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.strip() == (
            "error: no database at triage.db: run `triage init` (or `triage db upgrade`)"
        )
        assert not (tmp_path / "triage.db").exists()


def test_version_and_short_help(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = run_triage("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("triage ")
    assert command().main(args=["analyze", "-h"], prog_name="triage", standalone_mode=False) == 0
    assert "  --batch-mode  " in capsys.readouterr().out  # a flag, shown as a flag


def _commands(cmd: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_help_shows_config_keys_literally_and_flags_as_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli = command()  # what `triage` runs
    paths = list(_commands(cli))
    assert ("analyze",) in paths and ("db", "upgrade") in paths
    texts = {}
    for path in paths:
        code = cli.main(args=[*path, "--help"], prog_name="triage", standalone_mode=False)
        assert code in (0, None), path
        texts[path] = capsys.readouterr().out
        for debris in ("<bool>", "<list[str]>", "<int range>", "(default:  "):
            assert debris not in texts[path], (path, debris)
    assert "[llm] provider)" in " ".join(texts[("analyze",)].split())
    assert "[themes] window" in " ".join(texts[("themes",)].split())
    assert "-p, --provider PROVIDER" in texts[("eval",)]
