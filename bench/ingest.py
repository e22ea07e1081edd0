"""Ingestion benchmark: backfill from the fake GitHub and Stack Exchange servers into SQLite.

Prints API requests per 1,000 items, items per second end to end (the real `triage` command in a
subprocess), peak RSS, how RSS changes with item count, and the cost of a sync with nothing new.

    python bench/ingest.py [--issues 20000] [--questions 5000]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

import procs
from procs import start_fake

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"(\d+) items \((\d+) new.*?\) in (\d+) requests, ([\d.]+)s")


def run_measured(args: list[str], env: dict[str, str], cwd: Path) -> tuple[str, float, float]:
    """Like `triage` but measures the child's peak RSS; stops the benchmark if it fails."""
    out, seconds, rss, code = procs.run_measured(args, env, cwd)
    if code != 0:
        raise SystemExit(f"triage {' '.join(args)} failed:\n{out[-2000:]}")
    return out, seconds, rss


def backfill(
    kind: str, target: str, env: dict[str, str], cwd: Path, limit: int | None = None
) -> dict[str, float]:
    args = ["backfill", kind, target] + (["--limit", str(limit)] if limit else [])
    out, seconds, rss = run_measured(args, env, cwd)
    m = SUMMARY.search(out)
    if not m:
        raise SystemExit(f"no summary in output:\n{out[-2000:]}")
    items, _new, requests, inner = int(m[1]), int(m[2]), int(m[3]), float(m[4])
    return {
        "items": items,
        "requests": requests,
        "seconds": seconds,
        "fetch_seconds": inner,
        "rss_mb": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--issues", type=int, default=20_000)
    parser.add_argument("--questions", type=int, default=5_000)
    opts = parser.parse_args()

    gh, gh_url = start_fake("tests.fakes.github", "--issues", str(opts.issues), "--prs-every", "10")
    se, se_url = start_fake(
        "tests.fakes.stackexchange", "--questions", str(opts.questions), "--tag", "bench"
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cwd = Path(tmp)
            env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
            env.update(
                {
                    "TRIAGE_DATABASE__URL": f"sqlite:///{cwd / 'bench.db'}",
                    "TRIAGE_GITHUB__API_URL": gh_url,
                    "TRIAGE_STACKEXCHANGE__API_URL": se_url,
                    "TRIAGE_LOGGING__LEVEL": "WARNING",
                    "PYTHONPATH": str(ROOT),
                }
            )
            run_measured(["init"], env, cwd)
            repo = "bench/repo"
            small = backfill("github", "bench/small", env, cwd, limit=max(opts.issues // 10, 100))
            g = backfill("github", repo, env, cwd)
            s = backfill("stackoverflow", "bench", env, cwd)
            env_sync = dict(
                env, TRIAGE_GITHUB__REPOS=f'["{repo}"]', TRIAGE_STACKEXCHANGE__TAGS='["bench"]'
            )
            out, sync_seconds, _ = run_measured(["sync"], env_sync, cwd)
            sync_requests = [int(m[3]) for m in SUMMARY.finditer(out)]
    finally:
        gh.kill()
        se.kill()

    def line(name: str, r: dict[str, float], per: int) -> None:
        print(
            f"{name:<16} {int(r['items']):>7} items  {r['requests']:>5.0f} requests"
            f"  {1000 * r['requests'] / max(per, 1):6.1f} req/1k items"
            f"  {r['items'] / r['seconds']:8.0f} items/s end to end"
            f"  ({r['items'] / max(r['fetch_seconds'], 1e-9):.0f}/s in the fetch loop)"
            f"  peak RSS {r['rss_mb']:.0f} MB"
        )

    print(f"backfill into SQLite ({opts.issues} issues with 10% PRs, {opts.questions} questions)")
    line("github", g, opts.issues)
    line("stackexchange", s, opts.questions)
    line("github (small)", small, int(small["items"]))
    print(
        f"peak RSS growth from {int(small['items'])} to {int(g['items'])} items:"
        f" {g['rss_mb'] - small['rss_mb']:+.0f} MB"
    )
    total_items = g["items"] + s["items"]
    total_seconds = g["seconds"] + s["seconds"]
    print(
        f"overall: {total_items:.0f} items in {total_seconds:.1f}s"
        f" = {total_items / total_seconds:.0f} items/s"
    )
    print(
        f"incremental sync with nothing new: requests per source {sync_requests}"
        f" ({sync_seconds:.1f}s including start-up)"
    )


if __name__ == "__main__":
    main()
