"""The README's screenshot: an HTML digest that triage itself makes from the test fakes.

Starts the fake GitHub and Stack Exchange with a few days of reports about the example
sources, runs `triage init`, `sync`, `analyze` (local provider), `themes`, `duplicates` and
`digest --to html` as a user would, then photographs the page with headless Chromium.

    python bench/screenshot.py [--out docs/digest.png] [--html PATH] [--width 1000]

Needs Chromium (Debian: `apt-get install chromium`); with --html only, it writes the page and
no picture. `make screenshot` runs it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from procs import run_measured  # noqa: E402

from tests.fakes.github import FakeGitHub  # noqa: E402
from tests.fakes.stackexchange import FakeStackExchange  # noqa: E402

REPO, TAG = "google-gemini/cookbook", "google-gemini"
ISSUES = [
    ("Streaming response stops after the first chunk", "generate_content_stream output is cut."),
    ("Stream is cut off after one chunk in the Python SDK", "The streaming answer stops early."),
    ("Notebook crashes when uploading a large video", "The upload cell fails with a 500 error."),
    ("Large video upload fails with 500", "Uploading a 300 MB video file fails every time."),
    ("Add an example for function calling with tools", "A short notebook would help us."),
    ("Please add a cookbook for context caching", "An example with a long system prompt."),
    ("Typo in the quickstart notebook", "The install cell misspells the package name."),
    ("Quota exceeded (429) on the free tier", "Every second request is refused with 429."),
]
QUESTIONS = [
    ("Gemini API returns 429 RESOURCE_EXHAUSTED on the free tier", "Requests are refused."),
    ("How do I stream answers from Gemini in Python?", "Is streaming supported?"),
    ("Streaming response from Gemini stops after the first chunk", "The output is cut off."),
    ("How to upload a large video file to the Gemini API?", "The upload times out."),
    ("Function calling returns an empty response", "The model never calls my tool."),
]


def seed(gh: FakeGitHub, se: FakeStackExchange) -> None:
    now = datetime.now(UTC)
    gh.add_repo(REPO)
    gh.clock = now - timedelta(days=3)
    for title, body in ISSUES:
        gh.add_issue(REPO, title, body)
        gh.clock += timedelta(hours=5)
    start = int((now - timedelta(days=4)).timestamp())
    for i, (title, body) in enumerate(QUESTIONS):
        se.add_question(title, f"<p>{body}</p>", tags=[TAG], created=start + i * 9 * 3600)


def triage(*args: str, cwd: Path, env: dict[str, str]) -> None:
    out, _seconds, _rss, code = run_measured(list(args), env, cwd)
    if code != 0:
        raise SystemExit(f"triage {' '.join(args)} failed: {out.strip()[-1500:]}")


def make_html(out: Path) -> None:
    with FakeGitHub() as gh, FakeStackExchange() as se, tempfile.TemporaryDirectory() as tmp:
        seed(gh, se)
        keep = ("PATH", "HOME", "LANG", "PYTHONPATH")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env |= {
            "TRIAGE_GITHUB__API_URL": gh.base_url,
            "TRIAGE_STACKEXCHANGE__API_URL": se.base_url,
            "TRIAGE_LLM__PROVIDER": "local",
            "PYTHONPATH": str(ROOT),
        }
        work = Path(tmp)
        for step in (("init",), ("sync",), ("analyze",), ("themes",), ("duplicates",)):
            triage(*step, cwd=work, env=env)
        triage("digest", "--to", "html", "--out", str(out.resolve()), cwd=work, env=env)


def photograph(page: Path, png: Path, width: int) -> None:
    browser = next(
        (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )
    if browser is None:
        raise SystemExit("needs Chromium for the picture: apt-get install chromium (or use --html)")
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={width},1500",
            f"--screenshot={png.resolve()}",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
    )
    from PIL import Image  # matplotlib's dependency: small palette PNG for the README

    with Image.open(png) as img:
        img.convert("RGB").quantize(colors=64).save(png, optimize=True)
    print(f"wrote {png} ({png.stat().st_size // 1024} KB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "digest.png")
    ap.add_argument("--html", type=Path, help="keep the HTML digest here (alone: no picture)")
    ap.add_argument("--width", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        page = args.html or Path(tmp) / "digest.html"
        make_html(page)
        print(f"wrote {page}")
        if args.html is None or "--out" in sys.argv:
            photograph(page, args.out, args.width)


if __name__ == "__main__":
    main()
