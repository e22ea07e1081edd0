"""Digest benchmark: build the digest from a large SQLite database.

Generates a database of N items (GitHub and Stack Overflow, a year of history) with analyses,
a few hundred themes (some merged), theme assignments, duplicates and model calls, then times
`build_digest` for several windows. Target: under 2 s for 200,000 items.

    python bench/digest.py [--items 200000] [--themes 400] [--db PATH] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine  # noqa: E402

from triage.config import Config  # noqa: E402
from triage.db import migrate  # noqa: E402
from triage.db.engine import make_engine, session_factory  # noqa: E402
from triage.digest import build_digest  # noqa: E402
from triage.windows import Window  # noqa: E402

END = datetime(2025, 5, 12, 9)
HISTORY = timedelta(days=365)
WORDS = [
    "login",
    "crash",
    "timeout",
    "quota",
    "token",
    "model",
    "stream",
    "upload",
    "json",
    "error",
    "docs",
    "sdk",
]

ITEM_COLUMNS = (
    "key, source, scope, number, url, title, body, state, labels, tags, assignees, "
    "is_pull_request, comments, reactions, score, answer_count, is_answered, view_count, "
    "created_at, updated_at, content_hash, extra, fetched_at"
)


def ts(value: datetime) -> str:
    """The text form SQLAlchemy stores DateTime in on SQLite (so comparisons agree)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _items(n: int, rng: random.Random) -> list[tuple[object, ...]]:
    rows = []
    for i in range(n):
        github = rng.random() < 0.6
        created = ts(END - HISTORY * rng.random())
        if github:
            key, scope, url = (
                f"github:acme/sdk#{i}",
                "acme/sdk",
                f"https://github.com/acme/sdk/issues/{i}",
            )
        else:
            key, scope, url = (
                f"stackexchange:stackoverflow/{i}",
                "stackoverflow",
                f"https://stackoverflow.com/q/{i}",
            )
        answers = 0 if github or rng.random() < 0.3 else rng.randint(1, 3)
        title = " ".join(rng.choices(WORDS, k=6))
        state = "open" if rng.random() < 0.4 else "closed"
        rows.append(
            (key, "github" if github else "stackexchange", scope, i, url, title, "", state,
             "[]", "[]", "[]", False, rng.randint(0, 20), rng.randint(0, 10), rng.randint(-1, 5),
             answers, answers > 0, 0, created, created, f"h{i}", "{}", created)
        )  # fmt: skip
    return rows


def generate(engine: Engine, n_items: int, n_themes: int, seed: int = 7) -> dict[str, int]:
    """Fill a migrated database quickly with executemany; returns row counts."""
    rng = random.Random(seed)
    items = _items(n_items, rng)
    cats, prios = ["bug", "feature", "question", "docs"], ["low", "medium", "high", "critical"]
    analyses, theme_items = [], []
    themes = []
    for t in range(1, n_themes + 1):
        merged = rng.randint(1, t - 1) if t > 10 and rng.random() < 0.1 else None
        title = f"theme {t}: " + " ".join(rng.choices(WORDS, k=3))
        merged_at = ts(END) if merged else None
        themes.append((t, title, "", "[]", "bench", merged, merged_at, ts(END - HISTORY), ts(END)))
    weights = [1 / (t**0.8) for t in range(1, n_themes + 1)]
    theme_ids = list(range(1, n_themes + 1))
    for row in items:
        key, created, chash = row[0], row[18], row[20]
        if rng.random() < 0.9:
            if rng.random() < 0.1:  # an older analysis of earlier text
                analyses.append((key, "old", "local", "m", "v1", "ok", "question", "[]", "low",
                                 created))  # fmt: skip
            analyses.append((key, chash, "local", "m", "v1", "ok", rng.choice(cats), "[]",
                             rng.choice(prios), created[:-1] + "1"))  # fmt: skip
        if rng.random() < 0.7:
            tid = rng.choices(theme_ids, weights)[0]
            theme_items.append((key, tid, chash, created))
    keys = [r[0] for r in items]
    dups = []
    seen: set[tuple[str, str]] = set()
    while len(dups) < max(1, n_items // 100):
        a, b = sorted(rng.sample(keys, 2))
        if (a, b) not in seen:
            seen.add((a, b))
            at = ts(END - HISTORY * rng.random())
            dups.append((a, b, 0.8, rng.random(), "same error message", "bench", "m", at))
    calls = [
        ("gemini", "flash", "v1", "classify", 50, rng.randint(1000, 60000), 0, 2000, 900, "ok",
         0.01, False, ts(END - HISTORY * rng.random()))
        for _ in range(max(1, n_items // 10))
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO items ({ITEM_COLUMNS}) VALUES ({', '.join('?' * 23)})", items
        )
        conn.exec_driver_sql(
            "INSERT INTO themes (id, title, description, terms, provider, merged_into, merged_at,"
            " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
            themes,
        )
        conn.exec_driver_sql(
            "INSERT INTO analyses (item_key, content_hash, provider, model, prompt_version, status,"
            " category, labels, priority, created_at, dropped) VALUES (?,?,?,?,?,?,?,?,?,?,'[]')",
            analyses,
        )
        conn.exec_driver_sql(
            "INSERT INTO theme_items (item_key, theme_id, content_hash, assigned_at)"
            " VALUES (?,?,?,?)",
            theme_items,
        )
        conn.exec_driver_sql(
            "INSERT INTO duplicates (key_a, key_b, similarity, confidence, reason, provider, model,"
            " created_at) VALUES (?,?,?,?,?,?,?,?)",
            dups,
        )
        conn.exec_driver_sql(
            "INSERT INTO llm_calls (provider, model, prompt_version, purpose, items, input_tokens,"
            " cached_tokens, output_tokens, latency_ms, outcome, cost_usd, batch_mode, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            calls,
        )
    return {
        "items": len(items),
        "analyses": len(analyses),
        "themes": len(themes),
        "theme_items": len(theme_items),
        "duplicates": len(dups),
        "llm_calls": len(calls),
    }


def bench_digest(url: str, windows: list[str], repeat: int) -> dict[str, float]:
    """Best-of-`repeat` seconds to build the digest per window, each on a fresh engine."""
    cfg = Config()
    out = {}
    for spec in windows:
        best = float("inf")
        for _ in range(repeat):
            engine = make_engine(url)
            started = time.perf_counter()
            with session_factory(engine)() as session:
                d = build_digest(session, cfg, Window.ending(spec, END))
            best = min(best, time.perf_counter() - started)
            engine.dispose()
        out[spec] = best
        print(
            f"digest {spec:>4}: {best:.3f} s  ({d.total.current} items in window,"
            f" {d.active_themes} active themes, {d.duplicates_total} duplicates,"
            f" {d.unanswered.total} unanswered)"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--themes", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="keep the generated database here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        url = f"sqlite:///{db}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        started = time.perf_counter()
        counts = generate(engine, args.items, args.themes)
        engine.dispose()
        took = time.perf_counter() - started
        print(f"generated {counts} in {took:.1f} s")
        results = bench_digest(url, ["1d", "7d", "30d"], args.repeat)
        worst = max(results.values())
        print(f"slowest digest: {worst:.3f} s (target < 2 s): {'ok' if worst < 2 else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
