"""Themes and duplicates benchmark: 5,000 items offline (seconds) and through the fake Gemini
(calls and prompt tokens), then an incremental run with new items.

Items are made-up reports of N distinct problems on GitHub and Stack Overflow
(tests/fakes/corpus.py); purity is the share of themed items whose theme's main problem is
their own.

Then the NLBSE'24 figures of bench/themes_nlbse.py. Larger collections (to 200,000 items, wall
time and peak memory of the shipped commands) are bench/scale.py's.

    python bench/themes.py [--items 5000] [--problems 250] [--new 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

import tests.fakes.themes_model as fake_themes  # noqa: E402
from tests.fakes.corpus import Problem, batch, synthetic_problems  # noqa: E402
from tests.fakes.gemini import DEFAULT_KEY, FakeGemini  # noqa: E402
from triage.analysis.duplicates import run as dups  # noqa: E402
from triage.analysis.themes import run as th  # noqa: E402
from triage.config import Config, Secrets  # noqa: E402
from triage.context import Context  # noqa: E402
from triage.db import migrate, store  # noqa: E402
from triage.db.engine import transaction  # noqa: E402
from triage.db.schema import Item, LLMCall, Theme, ThemeItem  # noqa: E402
from triage.sources.base import ItemIn  # noqa: E402

START = datetime(2025, 5, 5)
EPOCH = datetime(2000, 1, 1)


def make_items(problems: list[Problem], total: int, seed: int, first: int) -> list[ItemIn]:
    per = max(1, total // len(problems))
    return batch(problems, per, START, seed=seed, first_number=first)[:total]


def context(db: Path, provider: str, fake: FakeGemini | None) -> Context:
    llm: dict[str, Any] = {"provider": provider}
    if fake is not None:
        llm["gemini"] = {"base_url": fake.base_url, "max_retries": 0}
    config = Config.model_validate({"database": {"url": f"sqlite:///{db}"}, "llm": llm})
    secrets = Secrets(gemini_api_key=SecretStr(DEFAULT_KEY)) if fake else Secrets()
    ctx = Context(config, secrets)
    migrate.upgrade(ctx.engine)
    return ctx


def load(ctx: Context, items: list[ItemIn]) -> None:
    with transaction(ctx.sessions) as s:
        for i in range(0, len(items), 1000):
            store.upsert_items(s, items[i : i + 1000])


def purity(ctx: Context, truth: dict[str, str]) -> tuple[int, float, float]:
    """(themes, share of stored items themed, share of themed items in their problem's theme)."""
    with ctx.sessions() as s:
        stored = s.scalar(select(func.count()).select_from(Item)) or 1
        rows = s.execute(select(ThemeItem.item_key, ThemeItem.theme_id)).all()
        themes = s.scalar(
            select(func.count()).select_from(Theme).where(Theme.merged_into.is_(None))
        )
    members: dict[int, Counter[str]] = defaultdict(Counter)
    for key, tid in rows:
        members[tid][truth[key]] += 1
    right = sum(max(c.values()) for c in members.values())
    return int(themes or 0), len(rows) / stored, right / max(len(rows), 1)


def calls(ctx: Context, purpose: str) -> tuple[int, int]:
    with ctx.sessions() as s:
        n, tokens = s.execute(
            select(func.count(), func.coalesce(func.sum(LLMCall.input_tokens), 0)).where(
                LLMCall.purpose == purpose
            )
        ).one()
    return int(n), int(tokens)


def run(label: str, ctx: Context, provider: str, truth: dict[str, str]) -> None:
    before = calls(ctx, "themes")
    t0 = time.perf_counter()
    result = th.run_for_context(ctx, EPOCH, provider)
    seconds = time.perf_counter() - t0
    after = calls(ctx, "themes")
    themes, themed, pure = purity(ctx, truth)
    extra = ""
    if provider == "gemini":
        extra = f", {after[0] - before[0]} calls, {after[1] - before[1]:,} prompt tokens"
    print(
        f"{label}: {result.pending} items in {seconds:.2f} s{extra};"
        f" {result.new_themes} new themes, {result.joined_existing} joined existing,"
        f" {result.merged} merged; {themes} live themes, {themed:.1%} of all items themed,"
        f" purity {pure:.1%}"
    )


def duplicates(label: str, ctx: Context, provider: str) -> None:
    t0 = time.perf_counter()
    result = dups.run_for_context(ctx, provider)
    seconds = time.perf_counter() - t0
    print(
        f"{label}: {result.open_items} open items in {seconds:.2f} s; {result.embedded} embedded,"
        f" {result.candidates} candidate pairs, {result.linked} links, {result.calls} calls"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--problems", type=int, default=250)
    parser.add_argument("--new", type=int, default=500)
    args = parser.parse_args()
    problems = synthetic_problems(args.problems, seed=1)
    first = make_items(problems, args.items, seed=1, first=1)
    later = make_items(problems, args.new, seed=2, first=10_000_000)
    for item in later:
        item.created_at = item.updated_at = item.created_at + timedelta(days=7)
    per_first = max(1, args.items // len(problems))
    per_later = max(1, args.new // len(problems))
    truth = {i.key: problems[n // per_first].name for n, i in enumerate(first)}
    truth.update({i.key: problems[n // per_later].name for n, i in enumerate(later)})
    print(f"{len(first)} items about {len(problems)} problems, then {len(later)} new items")

    with tempfile.TemporaryDirectory() as tmp:
        ctx = context(Path(tmp) / "offline.db", "local", None)
        load(ctx, first)
        run("offline themes, first run", ctx, "local", truth)
        load(ctx, later)
        run("offline themes, new items", ctx, "local", truth)
        duplicates("offline duplicates", ctx, "local")
        ctx.close()

        with FakeGemini() as fake:
            fake_themes.switches(fake).problems = problems
            ctx = context(Path(tmp) / "gemini.db", "gemini", fake)
            load(ctx, first)
            run("gemini themes (fake), first run", ctx, "gemini", truth)
            load(ctx, later)
            run("gemini themes (fake), new items", ctx, "gemini", truth)
            duplicates("gemini duplicates (fake)", ctx, "gemini")
            embeds = len(fake.requests_to(r":batchEmbedContents$"))
            print(f"  batchEmbedContents requests: {embeds}")
            n, tokens = calls(ctx, "duplicates")
            print(f"  duplicate judgements: {n} calls, {tokens:,} prompt tokens")
            duplicates("gemini duplicates (fake), re-run", ctx, "gemini")
            ctx.close()
    import themes_nlbse

    themes_nlbse.report()


if __name__ == "__main__":
    main()
