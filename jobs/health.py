"""`/healthz` and `/metrics` (Prometheus text format 0.0.4) for `triage run --health-port N`."""

from __future__ import annotations

import contextlib
import resource
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from jobs import runs
from triage.db import store
from triage.db.schema import Analysis, Item, LabelWrite, LLMCall
from triage.errors import ConfigError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Snapshot:
    """What the daemon publishes for /healthz and /metrics, so they never read its internals."""

    healthy: bool
    detail: str  # "ok", or why not
    jobs: tuple[str, ...]  # the jobs this process schedules
    runs: Mapping[tuple[str, str], int]  # (job, outcome) -> runs by this process
    last_success: Mapping[str, float]  # job -> Unix time of its last success here
    started: float  # Unix time the process started


Snapshots = Callable[[], Snapshot]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    """Every digit kept: `:g` would print a Unix time as 1.79569e+09, hours off."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


class _Family:
    """One metric family: HELP, TYPE and its samples."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name, self.kind, self.help = name, kind, help_text
        self.samples: list[tuple[dict[str, str], float]] = []

    def add(self, value: float, **labels: str) -> _Family:
        self.samples.append((labels, value))
        return self

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in self.samples:
            tag = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
            number = _number(value)
            lines.append(f"{self.name}{{{tag}}} {number}" if tag else f"{self.name} {number}")
        return "\n".join(lines)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _database_families(sessions: sessionmaker[Session]) -> list[_Family]:
    items = _Family("triage_items_stored", "gauge", "Items in the database, by source.")
    analysed = _Family(
        "triage_items_analysed", "gauge", "Items whose current text has an analysis."
    )
    tokens = _Family(
        "triage_tokens_spent_total", "counter", "Model tokens spent, by provider and kind."
    )
    cost = _Family("triage_cost_usd_total", "counter", "Estimated model spend in USD.")
    recorded = _Family(
        "triage_job_runs_recorded", "gauge", "Job runs in the log, every replica, by outcome."
    )
    labels = _Family("triage_label_writes", "gauge", "Label writes, by status.")
    with sessions() as s:
        for source, n in store.count_items(s).items():
            items.add(n, source=source)
        done = s.scalar(
            select(func.count(func.distinct(Analysis.item_key))).join(
                Item, (Item.key == Analysis.item_key) & (Item.content_hash == Analysis.content_hash)
            )
        )
        analysed.add(int(done or 0))
        spent = s.execute(
            select(
                LLMCall.provider,
                func.sum(LLMCall.input_tokens),
                func.sum(LLMCall.cached_tokens),
                func.sum(LLMCall.output_tokens),
                func.sum(LLMCall.cost_usd),
            ).group_by(LLMCall.provider)
        )
        for provider, inp, cached, out, usd in spent:
            tokens.add(int(inp or 0), provider=provider, kind="input")
            tokens.add(int(cached or 0), provider=provider, kind="cached")
            tokens.add(int(out or 0), provider=provider, kind="output")
            cost.add(float(usd or 0.0), provider=provider)
        for (job, outcome), n in sorted(runs.totals(s).items()):
            recorded.add(n, job=job, outcome=outcome)
        for status, n in s.execute(
            select(LabelWrite.status, func.count()).group_by(LabelWrite.status)
        ):
            labels.add(int(n), status=status)
    return [items, analysed, tokens, cost, recorded, labels]


def render_metrics(snap: Snapshot, sessions: sessionmaker[Session]) -> str:
    """Every family as Prometheus text; database figures are skipped while it is down."""
    families = [
        _Family("triage_up", "gauge", "1 while the scheduler runs and the database answers.").add(
            1 if snap.healthy else 0
        )
    ]
    job_runs = _Family("triage_job_runs_total", "counter", "Job runs by this process, by outcome.")
    failures = _Family("triage_job_failures_total", "counter", "Failed job runs by this process.")
    last_ok = _Family(
        "triage_job_last_success_timestamp_seconds", "gauge", "When each job last succeeded here."
    )
    for (job, outcome), n in sorted(snap.runs.items()):
        job_runs.add(n, job=job, outcome=outcome)
    for job in sorted(snap.jobs):
        failures.add(snap.runs.get((job, runs.FAILED), 0), job=job)
        if job in snap.last_success:
            last_ok.add(snap.last_success[job], job=job)
    families += [job_runs, failures, last_ok]
    if snap.healthy:
        # A scrape must answer even if a query fails.
        with contextlib.suppress(Exception):
            families += _database_families(sessions)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    families.append(
        _Family("process_cpu_seconds_total", "counter", "CPU time used.").add(
            cpu.ru_utime + cpu.ru_stime
        )
    )
    families.append(
        _Family("process_resident_memory_bytes", "gauge", "Resident memory.").add(_rss_bytes())
    )
    families.append(
        _Family("process_start_time_seconds", "gauge", "Start time (Unix epoch).").add(snap.started)
    )
    return "\n".join(f.render() for f in families) + "\n"


class HealthServer:
    """A tiny HTTP server on its own thread; it only reads."""

    def __init__(
        self, snapshot: Snapshots, sessions: sessionmaker[Session], host: str, port: int
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    snap = snapshot()
                    status = 200 if snap.healthy else 503
                    self._send(status, snap.detail + "\n", "text/plain; charset=utf-8")
                elif path == "/metrics":
                    self._send(200, render_metrics(snapshot(), sessions), CONTENT_TYPE)
                else:
                    self._send(404, "not found: try /healthz or /metrics\n", "text/plain")

            def _send(self, status: int, body: str, ctype: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        try:
            self._httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve health checks on {host}:{port}: {exc.strerror}"
            ) from None
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
