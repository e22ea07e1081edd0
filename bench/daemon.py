"""Daemon benchmark: idle cost of `triage run`, and one full cycle over new items from the fakes.

1. Idle: `triage run` on the embedded defaults (SQLite, no sources) for a minute: resident
   memory and CPU share (targets: under 150 MB, under 1% CPU).
2. One cycle: `triage run --once --only sync,analyze,themes,digest` over N new items served by
   the fake GitHub and Stack Exchange servers, analysed through the fake Gemini API (or the local
   provider): wall seconds, peak RSS, and each job's own seconds from the job log.

    python bench/daemon.py [--idle-seconds 60] [--issues 5000] [--questions 5000]
                           [--provider gemini|local] [--skip-idle] [--skip-cycle]
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from procs import run_measured, start_fake

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
THEMES_MODEL = ("tests.fakes.themes_model",)  # the fake Gemini answers themes prompts too


def base_env(cwd: Path) -> dict[str, str]:
    drop = ("TRIAGE_", "GITHUB_TOKEN", "GEMINI_API_KEY", "GOOGLE_API_KEY", "SLACK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"PYTHONPATH": str(ROOT), "TRIAGE_DATABASE__URL": f"sqlite:///{cwd / 'bench.db'}"})
    return env


def triage(args: list[str], env: dict[str, str], cwd: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "triage.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(
            f"triage {' '.join(args)} failed:\n{out.stdout[-1500:]}{out.stderr[-1500:]}"
        )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        env = base_env(cwd)
        triage(["init"], env, cwd)
        proc = subprocess.Popen(
            [sys.executable, "-m", "triage.cli", "run", "--health-port", "0"],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            if "daemon started" in line:
                break
        else:
            raise SystemExit("the daemon did not start")
        time.sleep(2)  # let start-up settle before measuring
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        peak = 0.0
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            peak = max(peak, rss_mb(proc.pid))
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        share = 100 * (cpu1 - cpu0) / (t1 - t0)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    print(
        f"idle daemon over {t1 - t0:.0f}s: RSS {peak:.0f} MB (target < 150),"
        f" CPU {share:.2f}% (target < 1%), exit code after SIGTERM {code}"
    )


def cycle(issues: int, questions: int, provider: str) -> None:
    fakes = [
        start_fake("tests.fakes.github", "--issues", str(issues), "--prs-every", "0"),
        start_fake("tests.fakes.stackexchange", "--questions", str(questions), "--tag", "bench"),
    ]
    if provider == "gemini":
        fakes.append(start_fake("tests.fakes.gemini", preload=THEMES_MODEL))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cwd = Path(tmp)
            env = base_env(cwd)
            env.update(
                {
                    "TRIAGE_GITHUB__API_URL": fakes[0][1],
                    "TRIAGE_GITHUB__REPOS": '["bench/repo"]',
                    "TRIAGE_STACKEXCHANGE__API_URL": fakes[1][1],
                    "TRIAGE_STACKEXCHANGE__TAGS": '["bench"]',
                    "TRIAGE_LLM__PROVIDER": provider,
                    "TRIAGE_LLM__DAILY_TOKEN_BUDGET": "0",
                    # The fakes' items date from 2020 on: windows wide enough to hold them all.
                    "TRIAGE_THEMES__WINDOW": "5000d",
                    "TRIAGE_DIGEST__WINDOW": "5000d",
                    "TRIAGE_LOGGING__LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
                    "GITHUB_TOKEN": "ghp_" + "b" * 36,
                }
            )
            if provider == "gemini":
                env["TRIAGE_LLM__GEMINI__BASE_URL"] = fakes[2][1]
                env["GEMINI_API_KEY"] = "fake-gemini-key"
            triage(["init"], env, cwd)
            args = ["run", "--once", "--only", "sync,analyze,themes,digest"]
            out, seconds, peak, code = run_measured(args, env, cwd)
            rows = sqlite3.connect(cwd / "bench.db").execute(
                "SELECT job, outcome, started_at, finished_at, error, counts"
                " FROM job_runs ORDER BY id"
            )
            jobs = [
                f"{job} {outcome} {_secs(a, b):.1f}s {counts}" + (f" ({err[:80]})" if err else "")
                for job, outcome, a, b, err, counts in rows
            ]
            items = sqlite3.connect(cwd / "bench.db").execute("SELECT count(*) FROM items")
            count = items.fetchone()[0]
    finally:
        for proc, _ in fakes:
            proc.kill()
    if code != 0:
        print(out[-3000:])
    print(
        f"one cycle over {count} new items ({provider} provider): {seconds:.1f}s wall,"
        f" peak RSS {peak:.0f} MB, exit code {code}"
    )
    print("\n".join("  " + j for j in jobs))


def _secs(a: str, b: str | None) -> float:
    if b is None:
        return float("nan")
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--issues", type=int, default=5_000)
    parser.add_argument("--questions", type=int, default=5_000)
    parser.add_argument("--provider", choices=["gemini", "local"], default="gemini")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-cycle", action="store_true")
    opts = parser.parse_args()
    if not opts.skip_idle:
        idle(opts.idle_seconds)
    if not opts.skip_cycle:
        cycle(opts.issues, opts.questions, opts.provider)


if __name__ == "__main__":
    main()
