"""Replica benchmark: an analyze backlog done by one `triage run` replica, then by two.

5,000 pending items on a fresh PostgreSQL database; the fake Gemini (tests/fakes/gemini.py, in
this process) takes 3 s to answer every call. Each replica is `triage run --once --only analyze`
in its own process, with the default [llm] (100 items a call, 4 calls at once) and [daemon]
settings: the first to start plans the run as units and both claim them (jobs/share.py).

Printed for each: wall seconds from launch until every replica exited; from the first replica's
"job started" until the last unit was done (the run: planning and analysis, without interpreter
start-up and exit); from the plan to the last unit done
(the backlog itself); calls; units each replica did; items the fake received more than once
(read from the prompts it was sent) and items with more than one analysis row (target: 0 and
0); and the speed-up of two replicas over one (target >= 1.8x).

50 calls of 100 items, 4 at a time, are 13 rounds of 3 s for one replica and 7 for two (8 at a
time): 13/7 = 1.86x is the most two replicas can gain here.

    python bench/replicas.py [--items 5000] [--call-seconds 3] [--postgres URL]

The database server is TRIAGE_TEST_POSTGRES_URL's (default postgresql+psycopg://postgres@
127.0.0.1:5432/test); a database is created for each measurement and dropped after it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.gemini import DEFAULT_KEY, FakeGemini  # noqa: E402
from tests.fakes.gemini_store import texts_of  # noqa: E402
from triage.db import migrate, store  # noqa: E402
from triage.db.engine import make_engine, session_factory, transaction  # noqa: E402
from triage.db.schema import Analysis, WorkUnit  # noqa: E402
from triage.sources.base import ItemIn  # noqa: E402

ARGV = [sys.executable, "-m", "triage.cli", "run", "--once", "--only", "analyze"]
MARK = re.compile(r"BQ\d{5}")
T0 = datetime(2025, 3, 1)
WORDS = ["crashes on start", "add dark mode", "how do I configure", "typo in the docs"]


@dataclass
class Outcome:
    replicas: int
    wall: float  # from launching the processes until the last one exited
    run: float  # from the first replica's "job started" (after start-up) to the last unit done
    backlog: float  # from the plan to the last unit done (the database's clock)
    calls: int
    sent_twice: int
    stored_twice: int
    analysed: int
    units: dict[str, int]
    codes: list[int]


@contextmanager
def database(server: str) -> Iterator[str]:
    name = f"triage_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(url: str, n: int) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    items = [
        ItemIn(
            key=f"github:bench/repo#{i}",
            source="github",
            scope="bench/repo",
            number=i,
            url=f"https://github.com/bench/repo/issues/{i}",
            title=f"App {WORDS[i % len(WORDS)]} BQ{i:05d}",
            body="Reported from the field, details in the log.",
            created_at=T0,
            updated_at=T0 + timedelta(seconds=i),
        )
        for i in range(n)
    ]
    with transaction(session_factory(engine)) as s:
        for start in range(0, n, 1000):
            store.upsert_items(s, items[start : start + 1000])
    engine.dispose()


def measure(server: str, items: int, replicas: int, call_seconds: float) -> Outcome:
    with database(server) as url, FakeGemini() as fake, tempfile.TemporaryDirectory() as tmp:
        seed(url, items)
        fake.slow(r":generateContent$", call_seconds)
        drop = ("TRIAGE_", "GITHUB_TOKEN", "GEMINI_API_KEY", "GOOGLE_API_KEY", "SLACK_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "TRIAGE_DATABASE__URL": url,
                "TRIAGE_LLM__PROVIDER": "gemini",
                "TRIAGE_LLM__GEMINI__BASE_URL": fake.base_url,
                "TRIAGE_LLM__DAILY_TOKEN_BUDGET": "0",
                "TRIAGE_LOGGING__LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
                "TRIAGE_LOGGING__FORMAT": "json",
                "GEMINI_API_KEY": DEFAULT_KEY,
            }
        )
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                [*ARGV, "--replica", f"r{n}"],
                cwd=tmp,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(replicas)
        ]
        codes, starts = [], []
        for proc in procs:
            _, err = proc.communicate()
            codes.append(proc.returncode)
            if proc.returncode != 0 or "BENCH_LOG_LEVEL" in os.environ:
                print(err[-6000:], file=sys.stderr)
            starts += [job_started(line) for line in err.splitlines() if "job started" in line]
        ended = time.monotonic()
        sent: Counter[str] = Counter()
        for req in fake.requests_to(r":generateContent$", "POST"):
            contents = req.json().get("contents") or []
            sent.update(MARK.findall("\n".join(texts_of(c) for c in contents)))
        engine = make_engine(url)
        with session_factory(engine)() as s:
            per_item = select(Analysis.item_key, func.count().label("n")).group_by(
                Analysis.item_key
            )
            rows = s.execute(per_item).all()
            planned, last = s.execute(
                select(func.min(WorkUnit.created_at), func.max(WorkUnit.finished_at))
            ).one()
            done = s.execute(
                select(WorkUnit.replica, func.count())
                .where(WorkUnit.state == "done")
                .group_by(WorkUnit.replica)
            ).all()
        engine.dispose()
        return Outcome(
            replicas=replicas,
            wall=ended - started,
            # Log times and the database's clock: both UTC, on this one host.
            run=last.replace(tzinfo=UTC).timestamp() - min(starts) if last and starts else 0.0,
            backlog=(last - planned).total_seconds() if planned and last else 0.0,
            calls=fake.generate_calls,
            sent_twice=sum(1 for n in sent.values() if n > 1),
            stored_twice=sum(1 for _key, n in rows if n > 1),
            analysed=len(rows),
            units={str(r): int(n) for r, n in done},
            codes=codes,
        )


def job_started(line: str) -> float:
    """The Unix time of a JSON "job started" log line."""
    stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


def report(o: Outcome) -> None:
    units = ", ".join(f"{r} {n}" for r, n in sorted(o.units.items()))
    print(
        f"{o.replicas} replica{'s' if o.replicas > 1 else ''}: {o.wall:.1f}s wall"
        f" ({o.run:.1f}s from the job's start to the last unit done,"
        f" {o.backlog:.1f}s from the plan), {o.analysed} items analysed in {o.calls} calls,"
        f" units done: {units}; sent twice: {o.sent_twice}, stored twice: {o.stored_twice},"
        f" exit codes {o.codes}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--call-seconds", type=float, default=3.0)
    default = os.environ.get(
        "TRIAGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--postgres", default=default)
    opts = parser.parse_args()
    one = measure(opts.postgres, opts.items, 1, opts.call_seconds)
    report(one)
    two = measure(opts.postgres, opts.items, 2, opts.call_seconds)
    report(two)
    print(
        f"speed-up of two replicas: {one.wall / two.wall:.2f}x wall,"
        f" {one.run / two.run:.2f}x from the job's start to the last unit,"
        f" {one.backlog / two.backlog:.2f}x plan to last unit (target >= 1.8x);"
        f" items analysed twice: {two.sent_twice} sent, {two.stored_twice} stored (target 0)"
    )


if __name__ == "__main__":
    main()
