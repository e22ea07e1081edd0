"""Duplicates and themes at organization scale: wall time and peak memory of the shipped commands.

Builds a SQLite database of N open items made of real text, the NLBSE'24 issues recombined: item
i has the title of one issue of a repository and a run of paragraphs of another, often followed
by a few of a third; 2 % restate an earlier item (same body, title reworded), so duplicates
exist. Items are spread over the five NLBSE'24 repositories and a Stack Overflow scope, created
over the last 20 days. With 300 issues per repository each title and passage recurs in about
N / 1,500 items, so at 200,000 far more items look alike than in a real tracker: a hard case for
candidate pairs. Then, per mode, on a fresh copy of that database, runs `triage duplicates` and
`triage themes` as a user would (one process each), adds `--new` items created now and runs both
again. Each run's wall time and the peak RSS of its process (`os.wait4`) are measured; targets:
peak < 1.5 GB, a run with 1,000 new items < 60 s.

Modes: `offline` (`--provider local`, words only) and `embeddings` (the fake OpenAI-compatible
server of tests/fakes/openai.py in this process: duplicates `--provider openai` embed and judge
pairs with it, themes `--provider local` with `[themes] embedding_provider = "openai"`). The
fake's own time answering is counted in the command's wall time and shown apart.

The built database is kept at --db (default: the temp directory) and reused while its size and
generator match; runs change a database, so each mode runs on a copy (kept with --keep).

    python bench/scale.py [--items 5000] [--new 1000] [--stages duplicates,themes]
                          [--modes offline,embeddings] [--db PATH] [--keep] [--timeout 3600]
                          [--debug]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

import tests.fakes.themes_model  # noqa: E402, F401  (registers the duplicates judge on the fake)
from tests.fakes.openai import FakeOpenAI  # noqa: E402
from tests.fakes.server import Request, Response  # noqa: E402
from triage.db import migrate, store  # noqa: E402
from triage.db.engine import make_engine, session_factory, transaction  # noqa: E402
from triage.db.schema import Item  # noqa: E402
from triage.sources.base import ItemIn, github_key, stackexchange_key  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared/data/nlbse24/issues_train.csv"
GENERATOR = 2  # bump when the items made change: a cached database of another one is rebuilt
SEED = 14
DAYS = 20  # items are created over this many days before the database is built
RESTATED = 0.02  # share of items that restate an earlier one (the duplicates to find)
STACK_OVERFLOW = 0.1  # share of items asked on Stack Overflow instead of the repository
SECOND_BODY = 0.7  # share of items whose body goes on with paragraphs of a second issue
MAX_BODY = 8000  # characters: a few issues carry 200 KB logs; 130 copies of one would dominate
CHUNK = 2000  # items per store.upsert_items call
PEAK_TARGET = 1.5e9  # bytes
NEW_TARGET = 60.0  # seconds
EMBEDDING_MODEL = "embeddinggemma"
SO_TAGS = {
    "bitcoin/bitcoin": "bitcoin",
    "facebook/react": "reactjs",
    "microsoft/vscode": "visual-studio-code",
    "opencv/opencv": "opencv",
    "tensorflow/tensorflow": "tensorflow",
}
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Issue:
    title: str
    paragraphs: tuple[str, ...]


def paragraphs(body: str) -> tuple[str, ...]:
    """A body's paragraphs; a fenced block stays whole, so a cut never leaves a fence open."""
    out: list[str] = []
    lines: list[str] = []
    fenced = False
    for line in body.replace("\r\n", "\n").split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        if not line.strip() and not fenced:
            if lines:
                out.append("\n".join(lines))
                lines = []
            continue
        lines.append(line)
    if lines:
        out.append("\n".join(lines) + ("\n```" if fenced else ""))
    return tuple(out)


def read_pool(path: Path) -> dict[str, list[Issue]]:
    """The NLBSE'24 issues by repository, in file order."""
    csv.field_size_limit(sys.maxsize)
    pool: dict[str, list[Issue]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            issue = Issue(" ".join(row["title"].split()), paragraphs(row["body"]))
            pool.setdefault(row["repo"], []).append(issue)
    return dict(sorted(pool.items()))


def reword(title: str, rng: random.Random) -> str:
    """The same title said a little differently: a word or two dropped, two words swapped."""
    words = title.split()
    for _ in range(min(2, max(0, len(words) - 3))):
        del words[rng.randrange(len(words))]
    if len(words) >= 2:
        k = rng.randrange(len(words) - 1)
        words[k], words[k + 1] = words[k + 1], words[k]
    return " ".join(words)


@dataclass(frozen=True)
class Text:
    repo: str
    on_stack_overflow: bool
    title: str
    body: str


class Generator:
    """Item i is the same whatever N is: each item has its own seeded random stream."""

    def __init__(self, pool: dict[str, list[Issue]], end: datetime, total: int) -> None:
        self.pool = pool
        self.repos = list(pool)
        self.end = end  # the built database's newest item; new items are created later
        self.total = max(total, 1)

    def text(self, i: int) -> Text:
        rng = random.Random(f"{SEED}:{i}")
        if i > 0 and rng.random() < RESTATED:
            earlier = self.text(rng.randrange(i))
            return Text(
                earlier.repo, earlier.on_stack_overflow, reword(earlier.title, rng), earlier.body
            )
        repo = self.repos[rng.randrange(len(self.repos))]
        issues = self.pool[repo]
        title = issues[rng.randrange(len(issues))].title
        # A run of one issue's paragraphs (from its start, template and all, half the time),
        # often followed by a few of another's: items share a passage, rarely a whole body.
        first = issues[rng.randrange(len(issues))].paragraphs
        start = 0 if rng.random() < 0.5 or not first else rng.randrange(len(first))
        parts = list(first[start : start + rng.randint(2, 6)])
        if rng.random() < SECOND_BODY:
            more = issues[rng.randrange(len(issues))].paragraphs
            start = rng.randrange(len(more)) if more else 0
            parts += more[start : start + rng.randint(1, 3)]
        body = ""
        for part in parts:
            if body and len(body) + len(part) > MAX_BODY:
                break
            body = f"{body}\n\n{part}" if body else part
        return Text(repo, rng.random() < STACK_OVERFLOW, title, body[:MAX_BODY])

    def item(self, i: int, created: datetime) -> ItemIn:
        text = self.text(i)
        number = i + 1
        if text.on_stack_overflow:
            key = stackexchange_key("stackoverflow", number)
            url = f"https://stackoverflow.com/questions/{number}"
            source, scope, tags = "stackexchange", "stackoverflow", [SO_TAGS.get(text.repo, "")]
        else:
            key = github_key(text.repo, number)
            url = f"https://github.com/{text.repo}/issues/{number}"
            source, scope, tags = "github", text.repo, []
        return ItemIn(
            key=key,
            source=source,
            scope=scope,
            number=number,
            url=url,
            title=text.title,
            body=text.body,
            tags=[t for t in tags if t],
            created_at=created,
            updated_at=created,
        )

    def created(self, i: int) -> datetime:
        """Spread evenly over DAYS days up to `end`, in number order."""
        return self.end - timedelta(days=DAYS) * (1 - i / self.total)

    def items(self, first: int, count: int, at: datetime | None = None) -> Iterator[ItemIn]:
        for i in range(first, first + count):
            yield self.item(i, at or self.created(i))


def store_items(db: Path, items: Iterator[ItemIn]) -> int:
    """Write items through the store, CHUNK a call; returns how many."""
    engine = make_engine(f"sqlite:///{db}")
    sessions = session_factory(engine)
    done = 0
    chunk: list[ItemIn] = []
    try:
        for item in items:
            chunk.append(item)
            if len(chunk) == CHUNK:
                with transaction(sessions) as s:
                    store.upsert_items(s, chunk)
                done += len(chunk)
                chunk = []
        if chunk:
            with transaction(sessions) as s:
                store.upsert_items(s, chunk)
            done += len(chunk)
        with engine.connect() as conn:  # one file to copy: the WAL folded into it
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return done


def meta_path(db: Path) -> Path:
    return db.with_name(db.name + ".json")


def cached_db(db: Path, n: int, csv_path: Path) -> tuple[dict[str, Any], Path]:
    """The database of n items at `db`, built unless one of the same size and generator is there."""
    want = {"generator": GENERATOR, "seed": SEED, "items": n}
    meta = meta_path(db)
    if db.exists() and meta.exists():
        have = json.loads(meta.read_text(encoding="utf-8"))
        if {k: have.get(k) for k in want} == want:
            print(f"reusing {db} ({n:,} items, built {have['built']})")
            return have, db
    if not csv_path.exists():
        sys.exit(f"{csv_path} not found: the items are made of NLBSE'24 issues")
    for stale in (db, meta, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine)
    engine.dispose()
    end = store.utcnow().replace(microsecond=0)
    gen = Generator(read_pool(csv_path), end, n)
    store_items(db, gen.items(0, n))
    have = {**want, "built": end.isoformat()}
    meta.write_text(json.dumps(have), encoding="utf-8")
    size = db.stat().st_size / 2**20
    print(f"built {db}: {n:,} items in {time.perf_counter() - started:.1f} s, {size:,.0f} MiB")
    return have, db


def window_days(db: Path) -> int:
    """Days from the oldest item to now, plus one: the themes window that holds every item."""
    engine = make_engine(f"sqlite:///{db}")
    try:
        with session_factory(engine)() as s:
            oldest = s.scalar(select(func.min(Item.updated_at)))
    finally:
        engine.dispose()
    age = store.utcnow() - (oldest or store.utcnow())
    return math.ceil(age / timedelta(days=1)) + 1


class Fake(FakeOpenAI):
    """The fake OpenAI server keeping no request log (200,000 texts would stay in memory) and
    adding up the seconds it spends answering, so its share of a run's wall time shows."""

    def __init__(self) -> None:
        super().__init__(embedding_models=(f"{EMBEDDING_MODEL}:latest",))
        self.busy = 0.0
        self._busy_lock = threading.Lock()

    def dispatch(self, req: Request) -> Response:
        started = time.perf_counter()
        try:
            return self._respond(req)
        finally:
            with self._busy_lock:
                self.busy += time.perf_counter() - started


def write_config(path: Path, db: Path, window: int, fake: Fake | None) -> None:
    lines = [
        "[database]",
        f'url = "sqlite:///{db}"',
        "",
        "[llm]",
        'provider = "local"',
        "daily_token_budget = 0  # 200,000 items embed far more than a day's default budget",
        "",
        "[themes]",
        f'window = "{window}d"',
    ]
    if fake is not None:
        lines += [
            'embedding_provider = "openai"',
            "",
            "[llm.openai]",
            f'base_url = "{fake.base_url}/v1"',
            'model = "gemma3"',
            f'embedding_model = "{EMBEDDING_MODEL}"',
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class Run:
    items: int
    mode: str
    stage: str
    run: str
    seconds: float
    peak: int  # bytes
    status: str  # "ok", "exit N" or "timed out"
    summary: str
    fake_seconds: float | None = None


def triage_command() -> list[str]:
    """The installed `triage` entry point next to this interpreter, as a user runs it."""
    script = Path(sys.executable).with_name("triage")
    if not script.exists():
        sys.exit(f"{script} not found: install the project first (make install)")
    return [str(script)]


def child_env() -> dict[str, str]:
    # Only the config file decides: no TRIAGE_* override from the caller's shell. A wide
    # console keeps the summary on one line.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    env["COLUMNS"] = "10000"
    return env


def measure(args: list[str], cwd: Path, timeout: float) -> tuple[float, int, str, str, str]:
    """(wall seconds, peak RSS bytes, status, stdout, stderr) of one command."""
    out_path, err_path = cwd / "stdout.txt", cwd / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            args, cwd=cwd, env=child_env(), stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        status = "timed out"
        while True:
            # wait4, not Popen.wait: it gives this one child's resource usage (its peak RSS).
            pid, code, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status = "ok" if code == 0 else f"exit {os.waitstatus_to_exitcode(code)}"
                break
            if time.perf_counter() - started > timeout:
                os.kill(proc.pid, signal.SIGKILL)
                _, code, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(code)  # reaped above: Popen must not wait
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    return seconds, usage.ru_maxrss * 1024, status, stdout, stderr


def summary_line(stage: str, stdout: str, stderr: str) -> str:
    for line in stdout.splitlines():
        if line.startswith(f"{stage}:"):
            return line.strip()
    tail = (stderr.strip() or stdout.strip()).splitlines()
    return tail[-1].strip() if tail else ""


@dataclass(frozen=True)
class Plan:
    """What every mode runs: the stages, the new items added before the re-runs, the limits."""

    stages: list[str]
    new: int
    csv: Path
    timeout: float  # seconds per command
    debug: bool  # `triage --debug`: a failure shows its traceback
    fake: Fake  # serves the embeddings mode (started only for it)


def run_stage(plan: Plan, stage: str, mode: str, label: str, n: int, config: Path) -> Run:
    provider = "openai" if mode == "embeddings" and stage == "duplicates" else "local"
    args = [*triage_command(), "--config", str(config), *(["--debug"] if plan.debug else [])]
    args += [stage, "--provider", provider]
    before = plan.fake.busy if mode == "embeddings" else 0.0
    seconds, peak, status, stdout, stderr = measure(args, config.parent, plan.timeout)
    result = Run(n, mode, stage, label, seconds, peak, status, summary_line(stage, stdout, stderr))
    fake_part = ""
    if mode == "embeddings":
        result.fake_seconds = plan.fake.busy - before
        fake_part = f", fake server {result.fake_seconds:.1f} s"
    print(
        f"  {mode} {stage} ({label}): {seconds:.1f} s, peak {peak / 2**20:,.0f} MiB{fake_part},"
        f" {status}: {result.summary}",
        flush=True,
    )
    if status != "ok":
        # A failed statement's SQL can be megabytes long: each line is cut short.
        tail = [line[:300] for line in stderr.strip().splitlines()[-15:]]
        print("    " + "\n    ".join(tail), flush=True)
    return result


def run_mode(
    plan: Plan, mode: str, built: dict[str, Any], cached: Path, workdir: Path
) -> list[Run]:
    n = int(built["items"])
    here = workdir / mode
    here.mkdir(parents=True, exist_ok=True)
    db = here / "triage.db"
    shutil.copyfile(cached, db)
    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine)  # a database cached by an older version (`triage db upgrade`)
    engine.dispose()
    config = here / "triage.toml"
    write_config(config, db, window_days(db), plan.fake if mode == "embeddings" else None)
    print(f"{mode}: {n:,} items ({db})", flush=True)
    runs = [run_stage(plan, s, mode, "full", n, config) for s in plan.stages]
    if plan.new:
        gen = Generator(read_pool(plan.csv), datetime.fromisoformat(built["built"]), n)
        store_items(db, gen.items(n, plan.new, at=store.utcnow()))
        label = f"+{plan.new:,} new"
        runs += [run_stage(plan, s, mode, label, n + plan.new, config) for s in plan.stages]
    return runs


def report(runs: list[Run], new: int) -> bool:
    """Print the table and the targets; True when every command succeeded."""
    print()
    head = f"{'items':>8}  {'mode':<10}  {'stage':<10}  {'run':<11}  {'wall s':>8}  {'peak MiB':>8}"
    print(head + "  what the command printed")
    for r in runs:
        fake = f" [fake server {r.fake_seconds:.1f} s]" if r.fake_seconds is not None else ""
        status = "" if r.status == "ok" else f" ({r.status})"
        print(
            f"{r.items:>8,}  {r.mode:<10}  {r.stage:<10}  {r.run:<11}  {r.seconds:>8.1f}"
            f"  {r.peak / 2**20:>8,.0f}  {r.summary}{status}{fake}"
        )
    print()
    peak = max(runs, key=lambda r: r.peak)
    ok = peak.peak < PEAK_TARGET
    print(
        f"peak RSS: {peak.peak / 2**20:,.0f} MiB ({peak.mode} {peak.stage}, {peak.run});"
        f" target < 1.5 GB ({PEAK_TARGET / 2**20:,.0f} MiB): {'met' if ok else 'MISSED'}"
    )
    later = [r for r in runs if r.run != "full"]
    if later:
        slow = max(later, key=lambda r: r.seconds)
        broke = sum(r.status != "ok" for r in later)
        ok = slow.seconds < NEW_TARGET and not broke
        why = f" ({broke} of these runs failed)" if broke else ""
        print(
            f"slowest run with {new:,} new items: {slow.seconds:.1f} s ({slow.mode} {slow.stage});"
            f" target < {NEW_TARGET:.0f} s: {'met' if ok else 'MISSED'}{why}"
        )
    failed = [r for r in runs if r.status != "ok"]
    for r in failed:
        print(f"FAILED: {r.mode} {r.stage} ({r.run}): {r.status}")
    return not failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--new", type=int, default=1000, help="items added before the re-runs")
    parser.add_argument("--stages", default="duplicates,themes")
    parser.add_argument("--modes", default="offline,embeddings")
    parser.add_argument("--db", type=Path, help="where the built database is kept and reused")
    parser.add_argument("--keep", action="store_true", help="keep each mode's database and config")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per command")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--debug", action="store_true", help="run triage --debug (tracebacks)")
    args = parser.parse_args()
    stages = [s for s in args.stages.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    for name, given, known in (
        ("stage", stages, ("duplicates", "themes")),
        ("mode", modes, ("offline", "embeddings")),
    ):
        unknown = [x for x in given if x not in known]
        if unknown or not given:
            parser.error(f"unknown {name} {unknown}: choose from {', '.join(known)}")
    db = (args.db or Path(tempfile.gettempdir()) / f"triage-scale-{args.items}.db").resolve()
    built, cached = cached_db(db, args.items, args.csv)
    if args.keep:
        workdir = db.with_name(db.stem + "-runs")
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="triage-scale-"))
    plan = Plan(stages, args.new, args.csv, args.timeout, args.debug, Fake())
    runs: list[Run] = []
    try:
        if "embeddings" in modes:
            plan.fake.start()
        for mode in modes:
            runs += run_mode(plan, mode, built, cached, workdir)
    finally:
        plan.fake.stop()
        if args.keep:
            print(f"kept the databases and configs under {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if report(runs, args.new) else 1


if __name__ == "__main__":
    sys.exit(main())
