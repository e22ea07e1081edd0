"""`triage analyze` as a user runs it, against the fake Gemini API."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.analysis_support import MIXED, item, seed
from tests.fakes.gemini import DEFAULT_KEY, FakeGemini
from triage.db import migrate
from triage.db.engine import make_engine

from .cli import run_triage


@pytest.fixture
def fake(fake_gemini: FakeGemini) -> FakeGemini:
    """The module's fake Gemini (tests/conftest.py), reset for each test."""
    return fake_gemini


@pytest.fixture
def project(tmp_path: Path, fake: FakeGemini) -> Path:
    """A folder with triage.toml pointing at the fake, and a database holding four items."""
    (tmp_path / "triage.toml").write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "triage.db"}"
[llm.gemini]
base_url = "{fake.base_url}"
retry_initial_delay = 0.0
max_retries = 1
""",
        encoding="utf-8",
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'triage.db'}")
    migrate.upgrade(engine)
    seed(engine, [item(i + 1, t, b) for i, (t, b) in enumerate(MIXED)])
    engine.dispose()
    return tmp_path


def triage(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_triage(*args, cwd=project, env={"GEMINI_API_KEY": DEFAULT_KEY, **env})


def test_analyze_then_nothing_left_and_spend_in_status(project: Path, fake: FakeGemini) -> None:
    first = triage(project, "analyze")
    assert first.returncode == 0, first.stderr
    assert "4 analysed, 0 need review, 0 still pending; 1 calls" in first.stdout
    second = triage(project, "analyze")
    assert second.returncode == 0 and "nothing to analyse" in second.stdout
    assert fake.generate_calls == 1
    status = json.loads(triage(project, "status", "--json").stdout)
    assert status["backlog"] == 0 and status["spend"]["today"]["calls"] == 1
    assert status["spend"]["today"]["input_tokens"] == fake.usage[0]["promptTokenCount"]


def test_missing_key_is_one_line_naming_the_variable_and_the_local_provider(
    project: Path,
) -> None:
    # The configured provider without its key: the local provider, said once (as in the daemon).
    result = run_triage("analyze", cwd=project)
    assert result.returncode == 0, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "GEMINI_API_KEY is not set: analysing with the local provider" in line
    # Asking for Gemini by name without its key is one line naming the variable.
    result = run_triage("analyze", "--provider", "gemini", cwd=project)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "GEMINI_API_KEY" in line and "--provider local" in line


def test_unknown_model_lists_close_names(project: Path) -> None:
    result = triage(project, "analyze", TRIAGE_LLM__GEMINI__MODEL="gemini-3.5-flash-lte")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "unknown Gemini model 'gemini-3.5-flash-lte'" in line
    assert "close names: gemini-3.5-flash-lite" in line


def test_budget_exhausted_stops_with_spend_and_reset_time(project: Path) -> None:
    result = triage(project, "analyze", TRIAGE_LLM__DAILY_TOKEN_BUDGET="100")
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "daily token budget reached: 0 of 100 tokens" in line
    assert "resets at" in line and "UTC" in line and "4 items still pending" in line


def test_failed_calls_exit_1_with_items_pending(project: Path, fake: FakeGemini) -> None:
    fake.fail(500, times=100)
    result = triage(project, "analyze")
    assert result.returncode == 1
    assert "4 items still pending" in result.stderr and "re-run `triage analyze`" in result.stderr


def test_batch_mode_submit_and_poll(project: Path, fake: FakeGemini) -> None:
    submitted = triage(project, "analyze", "--batch-mode")
    assert submitted.returncode == 0, submitted.stderr
    assert "submitted 1 batch jobs (1 requests, 4 items)" in submitted.stdout
    assert "triage analyze --poll" in submitted.stdout
    waiting = triage(project, "analyze")
    assert waiting.returncode == 0 and "4 items wait in Batch Mode jobs" in waiting.stdout
    polled = triage(project, "analyze", "--poll")
    assert polled.returncode == 0, polled.stderr
    assert "1 collected, 0 still running" in polled.stdout
    assert "4 analysed" in polled.stdout
    assert fake.generate_calls == 0 and len(fake.batches) == 1


def test_the_fake_runs_standalone() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.gemini", "--port", "0"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        req = urllib.request.Request(
            f"{base}/v1/models/gemini-3.8-flash", headers={"x-goog-api-key": DEFAULT_KEY}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.load(resp)["name"] == "models/gemini-3.8-flash"
        # `triage themes` against the standalone fake gets a themes answer, not an empty one.
        item = "<<<ITEM i1 github>>>\nStreaming response cut off\nstream stops\n<<<END>>>"
        body = {
            "systemInstruction": {"parts": [{"text": "purpose: themes"}]},
            "contents": [{"role": "user", "parts": [{"text": item}]}],
            "generationConfig": {"responseMimeType": "application/json"},
        }
        req = urllib.request.Request(
            f"{base}/v1beta/models/gemini-3.8-flash:generateContent",
            data=json.dumps(body).encode(),
            headers={"x-goog-api-key": DEFAULT_KEY, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = json.load(resp)["candidates"][0]["content"]["parts"][0]["text"]
        assert json.loads(text)["assignments"] == [{"item": "i1", "theme": "N1"}]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TRIAGE_LLM__GEMINI__THINKING": "lots"}, "llm.gemini.thinking"),
        ({"TRIAGE_LLM__GEMINI__THINKING": "2048"}, "[llm.gemini] thinking = 2048"),
        ({"TRIAGE_LLM__CONCURRENCY": "-1"}, "llm.concurrency"),
        ({"TRIAGE_LLM__GEMINI__TOKENS_PER_MINUTE": "-5"}, "llm.gemini.tokens_per_minute"),
    ],
)
def test_bad_thinking_concurrency_or_rate_is_one_line_naming_the_key(
    project: Path, fake: FakeGemini, env: dict[str, str], named: str
) -> None:
    result = triage(project, "analyze", **env)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert named in line
    assert fake.generate_calls == 0


def test_a_retired_model_is_one_line_naming_its_replacement(project: Path) -> None:
    result = triage(project, "analyze", TRIAGE_LLM__GEMINI__MODEL="gemini-2.5-flash")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "gemini-2.5-flash was shut down" in line and "gemini-3.5-flash-lite" in line


def test_doctor_warns_about_a_rerouted_model_naming_its_replacement(project: Path) -> None:
    # gemini-3.7-flash is deprecated and answered by gemini-3.8-flash (the catalog and the fake).
    result = triage(project, "doctor", TRIAGE_LLM__GEMINI__MODEL="gemini-3.7-flash")
    [line] = [x for x in result.stdout.splitlines() if x.split()[1:2] == ["gemini:"]]
    assert line.startswith("warn") and "gemini-3.8-flash" in line, result.stdout
    current = triage(project, "doctor")
    [ok] = [x for x in current.stdout.splitlines() if x.split()[1:2] == ["gemini:"]]
    assert ok.startswith("ok"), current.stdout


def test_an_unreachable_gemini_is_one_line_naming_the_network(project: Path) -> None:
    # Nothing listens on port 9: the connection fails in the transport google-genai uses.
    result = triage(
        project,
        "analyze",
        TRIAGE_LLM__GEMINI__BASE_URL="http://127.0.0.1:9",
        TRIAGE_LLM__GEMINI__MAX_RETRIES="0",
    )
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: Gemini call failed") and "network error" in line, line
