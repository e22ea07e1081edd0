"""Run `triage run` as a real process and follow its JSON log lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.e2e.cli import CLEAN_PREFIXES
from triage import logs
from triage.cli import app

Event = dict[str, Any]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A TOML file from nested dicts (sub-tables as dotted section names)."""
    lines: list[str] = []

    def emit(name: str, table: dict[str, Any]) -> None:
        lines.append(f"[{name}]")
        subs = {k: v for k, v in table.items() if isinstance(v, dict)}
        lines.extend(f"{k} = {toml_value(v)}" for k, v in table.items() if k not in subs)
        lines.append("")
        for key, sub in subs.items():
            emit(f"{name}.{key}", sub)

    for name, table in sections.items():
        emit(name, table)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class Daemon:
    """`with Daemon(config, "--test-tick-every", "1") as d:` starts it; the exit code stays."""

    def __init__(
        self, config: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
    ) -> None:
        self.argv = [sys.executable, "-m", "triage.cli", "--config", str(config), "run", *args]
        self.cwd = cwd
        base = {k: v for k, v in os.environ.items() if not k.startswith(CLEAN_PREFIXES)}
        self.env = {**base, "TRIAGE_LOGGING__FORMAT": "json", **(env or {})}
        self.events: list[Event] = []
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._cond = threading.Condition()

    def start(self) -> Daemon:
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        return self

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None
                if isinstance(event, dict):
                    self.events.append(event)
                self._cond.notify_all()

    def wait_for(self, test: Callable[[Event], bool], timeout: float = 30.0) -> Event:
        """The first log event passing `test`; fails with the log if none comes in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if test(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc is not None and self.proc.poll() is not None):
                    raise AssertionError("no such log event; log:\n" + "\n".join(self.lines[-40:]))
                self._cond.wait(min(left, 0.2))

    def event(self, name: str, timeout: float = 30.0, **fields: Any) -> Event:
        return self.wait_for(
            lambda e: e.get("event") == name and all(e.get(k) == v for k, v in fields.items()),
            timeout,
        )

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> int:
        """SIGTERM and wait for the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.signal()
        return self.wait()

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    """`triage ARGS` in-process (typer's CliRunner)."""
    try:
        return CliRunner().invoke(app, list(args), env=env)
    finally:
        # The command pointed the log at CliRunner's stream, closed once it returns; point it
        # back at the real stderr so later log lines in this process have somewhere to go.
        logs.configure()
