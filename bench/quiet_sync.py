"""Quiet-sync benchmark: what `triage sync` of an organization costs when nothing is new.

300 repositories of one organization on the fake GitHub (which answers ETags and 304s and counts
the rate limit as GitHub does: an authorized 304 is free). The real `triage sync` runs in a
subprocess: a first sync stores every item and each repository's ETag, then syncs with nothing
new show requests sent, rate limit spent and wall time (target: 0 spent, <= 300 sent).

An org-level listing instead: `GET /orgs/{org}/issues?filter=all&state=all&sort=updated&since=`
exists ("List organization issues assigned to the authenticated user",
https://docs.github.com/en/rest/issues/issues#list-organization-issues-assigned-to-the-authenticated-user);
with `filter=all` it lists "all issues the authenticated user can see", pull requests included,
up to 100 a page. A quiet sync would be one request per organization, but it needs a token,
lists every repository of the organization (not only configured ones), and users report it
returns only repositories the token's user owns or is a member of
(https://github.com/PyGithub/PyGithub/issues/985), so it cannot replace per-repository
listings of public repositories. Its cost is computed below, not measured (the fake has no
such endpoint).

    python bench/quiet_sync.py [--repos 300] [--issues 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import procs  # noqa: E402

from tests.fakes.github import FakeGitHub  # noqa: E402

ORG = "bench-org"
SYNCS_PER_HOUR = 4  # the default [schedule] sync = "every 15m"


@dataclass
class Cost:
    sent: int
    spent: int
    not_modified: int
    seconds: float


def sync(fake: FakeGitHub, env: dict[str, str], cwd: Path) -> Cost:
    """`triage sync` once, measured on the fake's side (what GitHub would have counted)."""
    received, spent, quiet = fake.requests_received, fake.spent, fake.not_modified
    started = time.perf_counter()
    out, _seconds, _rss, code = procs.run_measured(["sync"], env, cwd)
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"triage sync failed:\n{out[-2000:]}")
    return Cost(
        fake.requests_received - received, fake.spent - spent, fake.not_modified - quiet, seconds
    )


def line(name: str, c: Cost) -> None:
    print(
        f"{name:<44} {c.sent:>5} sent  {c.spent:>5} spent  {c.not_modified:>5} x 304"
        f"  {c.seconds:5.1f}s wall"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=300)
    parser.add_argument("--issues", type=int, default=20, help="issues per repository")
    opts = parser.parse_args()

    fake = FakeGitHub()
    names = [f"{ORG}/repo{n:03d}" for n in range(opts.repos)]
    for name in names:
        fake.add_repo(name, issues=opts.issues, org=True)
    fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cwd = Path(tmp)
            env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
            env.update(
                {
                    "TRIAGE_DATABASE__URL": f"sqlite:///{cwd / 'bench.db'}",
                    "TRIAGE_GITHUB__API_URL": fake.base_url,
                    "TRIAGE_GITHUB__REPOS": f'["{ORG}/*"]',
                    "TRIAGE_STACKEXCHANGE__TAGS": "[]",
                    "TRIAGE_LOGGING__LEVEL": "WARNING",
                    "GITHUB_TOKEN": "ghp_bench",
                    "PYTHONPATH": str(ROOT),
                }
            )
            # No triage.toml: every key from the environment, a first sync takes all history.
            procs.run_measured(["db", "upgrade"], env, cwd)
            first = sync(fake, env, cwd)
            quiet = sync(fake, env, cwd)
            listed = dict(env, TRIAGE_GITHUB__REPOS=json.dumps(names))
            quiet_listed = sync(fake, listed, cwd)
            anonymous = {k: v for k, v in env.items() if k != "GITHUB_TOKEN"}
            quiet_anonymous = sync(fake, anonymous, cwd)
            fake.edit_issue(names[0], 1, title="Edited")
            one_change = sync(fake, env, cwd)
    finally:
        fake.stop()

    pages = math.ceil(opts.repos / 100)  # the organization's repository listing
    print(
        f"sync of {opts.repos} repositories ({opts.issues} issues each) on the fake GitHub;"
        " wall time is the whole `triage sync` process, start-up included"
    )
    line(f"first sync ({ORG}/*, stores ETags)", first)
    line(f"nothing new ({ORG}/*)", quiet)
    line(f"nothing new ({opts.repos} repositories listed)", quiet_listed)
    line("nothing new, no GITHUB_TOKEN (304s count)", quiet_anonymous)
    line("one issue edited", one_change)
    print(
        f"  {ORG}/* sends {opts.repos} issue checks + {pages} page(s) of the repository listing;"
        f" target 0 spent, <= {opts.repos} sent"
    )
    print(
        f"  before conditional requests a quiet sync spent {opts.repos + pages}"
        f" ({(opts.repos + pages) * SYNCS_PER_HOUR} of 5,000 an hour every 15 minutes);"
        f" now {quiet.spent * SYNCS_PER_HOUR}"
    )
    print(
        "org-level listing instead (computed): GET /orgs/{org}/issues?filter=all&since=..."
        " is 1 request a quiet sync per organization (0 spent if sent with its ETag),"
        " ceil(changes / 100) otherwise; it needs a token and sees only the repositories"
        " the token's user belongs to, so public repositories still need their own listing"
    )


if __name__ == "__main__":
    main()
