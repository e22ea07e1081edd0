"""LLM cost benchmark: packed batch prompts against one item per call, on the fake Gemini API.

Analyses the 1,500 labelled issues of the NLBSE'24 issue-report dataset (five repositories)
through the real pipeline (`triage.analysis.classify.run`, google-genai, the fake server) and
reports, per run: generateContent calls per 1,000 items (target <= 10), prompt tokens billed per
item beyond the item's own text (target: <= 15% of it with caching on), output tokens per item
and estimated cost. Token counts are the fake's (about four characters per token).

Then Gemini as it is today (default model gemini-3.8-flash, prices from the model catalog):
wall time for 2,000 items at `[llm] concurrency` 1, 4 and 8 against the fake answering a
100-item call in `--latency` seconds (3 s), and the most requests seen in any minute against
the configured requests_per_minute; prompt tokens per item (cached and not) and cost per 1,000
items at 3 shots per category and at shot_tokens = 40,000; thinking tokens per item at each
`[llm.gemini] thinking` setting (the fake's own thought counts, not Google's).

    python bench/llm_cost.py [--csv ../shared/data/nlbse24/issues_train.csv] [--limit N]
        [--latency 3.0] [--skip-classic]
"""

from __future__ import annotations

import argparse
import bisect
import csv
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, select  # noqa: E402

from tests.fakes.gemini import DEFAULT_KEY, FakeGemini  # noqa: E402
from triage.analysis import classify  # noqa: E402
from triage.config import Config, Secrets  # noqa: E402
from triage.context import Context  # noqa: E402
from triage.db import migrate, store  # noqa: E402
from triage.db.engine import make_engine, session_factory, transaction  # noqa: E402
from triage.db.schema import Analysis, Item, LLMCall  # noqa: E402
from triage.providers.gemini.provider import GeminiProvider  # noqa: E402
from triage.providers.packing import cap_body, cap_title, estimate_tokens  # noqa: E402
from triage.sources.base import ItemIn  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "nlbse24" / "issues_train.csv"
# The dataset's labels, as a repository would name them ([labels] map defaults).
LABELS = {"bug": "bug", "feature": "enhancement", "question": "question"}


@dataclass
class Figures:
    name: str
    items: int
    calls: int
    prompt: int
    cached: int
    output: int
    own: int  # tokens of the items' own (capped) text
    cache_create: int
    cost: float
    input_price: float
    cached_price: float
    thinking: int = 0
    seconds: float = 0.0
    peak_rpm: int = 0

    def per_item(self, n: float) -> float:
        return n / self.items if self.items else 0.0

    @property
    def billed_prompt(self) -> float:
        """Prompt tokens as billed, cached ones weighed by their lower price."""
        weight = self.cached_price / self.input_price if self.input_price else 0.0
        return self.prompt - self.cached + self.cached * weight + self.cache_create

    @property
    def overhead(self) -> float:
        return self.per_item(self.billed_prompt - self.own)

    def rows(self) -> dict[str, float]:
        return {
            "items analysed": self.items,
            "generateContent calls": self.calls,
            "calls per 1,000 items": 1000 * self.per_item(self.calls),
            "own text tokens / item": self.per_item(self.own),
            "prompt tokens / item (raw)": self.per_item(self.prompt),
            "  of which cached / item": self.per_item(self.cached),
            "billed prompt tokens / item": self.per_item(self.billed_prompt),
            "overhead tokens / item": self.overhead,
            "overhead % of own text": 100 * self.overhead / max(self.per_item(self.own), 1e-9),
            "output tokens / item": self.per_item(self.output),
            "est. USD per 1,000 items": 1000 * self.per_item(self.cost),
        }


def load(path: Path, limit: int | None) -> list[ItemIn]:
    csv.field_size_limit(10**9)
    out: list[ItemIn] = []
    per_repo: dict[str, int] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            repo = row["repo"]
            per_repo[repo] = per_repo.get(repo, 0) + 1
            n = per_repo[repo]
            created = datetime.fromisoformat(row["created_at"])
            out.append(
                ItemIn(
                    key=f"github:{repo}#{n}",
                    source="github",
                    scope=repo,
                    number=n,
                    url=f"https://github.com/{repo}/issues/{n}",
                    title=row["title"],
                    body=row["body"] or "",
                    labels=[LABELS.get(row["label"], row["label"])],
                    created_at=created,
                    updated_at=created,
                )
            )
            if limit and len(out) >= limit:
                break
    return out


def own_tokens(items: list[Item], max_chars: int) -> int:
    """What the model must read of each item anyway: its title and capped body."""
    total = 0
    for it in items:
        title = cap_title(it.title)
        total += estimate_tokens(title) + estimate_tokens(cap_body(title, it.body, max_chars))
    return total


def peak_per_minute(times: list[float]) -> int:
    """The most requests that arrived within any 60 seconds."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 60.0) - i for i, t in enumerate(times)), default=0)


def run_once(
    name: str,
    db_url: str,
    fake: FakeGemini,
    llm: dict[str, Any],
    examples: bool,
    latency: float = 0.0,
) -> Figures:
    fake.reset()
    fake.latency = latency
    config = Config.model_validate(
        {
            "database": {"url": db_url},
            "llm": {
                **llm,
                "daily_token_budget": 0,
                "few_shot_per_category": llm.get("few_shot_per_category", 3 if examples else 0),
                "gemini": {
                    "base_url": fake.base_url,
                    "retry_initial_delay": 0.0,
                    **llm.get("gemini", {}),
                },
            },
        }
    )
    ctx = Context(config=config, secrets=Secrets.from_env({"GEMINI_API_KEY": DEFAULT_KEY}))
    with transaction(ctx.sessions) as s:  # every run starts from nothing analysed
        s.execute(delete(Analysis))
        s.execute(delete(LLMCall))
    provider = GeminiProvider(config, DEFAULT_KEY)
    started = time.perf_counter()
    stats = classify.run(ctx, provider)
    seconds = time.perf_counter() - started
    with ctx.sessions() as s:
        items = list(s.scalars(select(Item)))
        calls = list(s.scalars(select(LLMCall)))
    gen = [c for c in calls if c.purpose == "classify"]
    figures = Figures(
        name=name,
        items=stats.analysed + stats.reviews,
        calls=fake.generate_calls,
        prompt=sum(c.input_tokens for c in gen),
        cached=sum(c.cached_tokens for c in gen),
        output=sum(c.output_tokens for c in gen),
        own=own_tokens(items, config.llm.max_item_chars),
        cache_create=sum(c.input_tokens for c in calls if c.purpose == "cache"),
        cost=sum(c.cost_usd for c in calls),
        input_price=provider.prices.input,
        cached_price=provider.prices.cached_input,
        thinking=sum(c.thinking_tokens for c in gen),
        seconds=seconds,
        peak_rpm=peak_per_minute(fake.generate_times),
    )
    ctx.close()
    return figures


def table(runs: list[Figures]) -> str:
    keys = list(runs[0].rows())
    width = max(len(k) for k in keys) + 2
    head = "".join(f"{r.name:>20}" for r in runs) + f"{'ratio 3/1':>12}"
    lines = [" " * width + head]
    for key in keys:
        values = [r.rows()[key] for r in runs]
        fmt = ",.4f" if "USD" in key else (",.1f" if any(v % 1 for v in values) else ",.0f")
        cells = "".join(f"{v:>20{fmt}}" for v in values)
        ratio = values[-1] / values[0] if values[0] else float("nan")
        lines.append(f"{key:<{width}}{cells}{ratio:>11.1f}x")
    return "\n".join(lines)


def today(db_url: str, fake: FakeGemini, latency: float) -> None:
    """Concurrency, long-context shots and thinking on the default (catalog) model."""
    rpm = Config().llm.gemini.requests_per_minute
    print(f"\n2,000 items, fake latency {latency:g} s per 100-item call, configured RPM {rpm}")
    print(f"{'concurrency':>12}{'calls':>8}{'wall s':>9}{'speed-up':>10}{'peak req/min':>14}")
    base = 0.0
    for n in (1, 4, 8):
        f = run_once(f"c{n}", db_url, fake, {"concurrency": n}, True, latency)
        base = base or f.seconds
        print(f"{n:>12}{f.calls:>8}{f.seconds:>9.1f}{base / f.seconds:>9.2f}x{f.peak_rpm:>14}")
        assert f.peak_rpm <= rpm, "more requests in a minute than configured"
    print("\nshots (gemini-3.8-flash, catalog prices today; cache minimum 4,096 tokens)")
    head = f"{'setting':>24}{'prompt/item':>13}{'cached/item':>13}{'uncached/item':>15}"
    print(head + f"{'calls':>7}{'USD/1k items':>14}")
    for label, llm in (
        ("3 per category", {"few_shot_per_category": 3}),
        ("shot_tokens=40000", {"few_shot_per_category": 3, "shot_tokens": 40_000}),
    ):
        f = run_once(label, db_url, fake, {"concurrency": 8, **llm}, True)
        per = f.per_item
        print(
            f"{label:>24}{per(f.prompt):>13,.0f}{per(f.cached):>13,.0f}"
            f"{per(f.prompt - f.cached):>15,.0f}{f.calls:>7}{1000 * per(f.cost):>14.4f}"
        )
    print("\nthinking (tokens per item as the fake counts them; billed as output)")
    print(f"{'thinking':>10}{'thinking/item':>15}{'output/item':>13}{'USD/1k items':>14}")
    for setting in ("off", "low", "medium", "high"):
        llm = {"concurrency": 8, "gemini": {"thinking": setting}}
        f = run_once(setting, db_url, fake, llm, True)
        per = f.per_item
        print(
            f"{setting:>10}{per(f.thinking):>15,.1f}{per(f.output):>13,.1f}"
            f"{1000 * per(f.cost):>14.4f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N issues")
    parser.add_argument("--latency", type=float, default=3.0, help="fake seconds per call")
    parser.add_argument("--skip-classic", action="store_true", help="only the 2,000-item runs")
    args = parser.parse_args()
    if not args.csv.exists():
        print(f"skipped: {args.csv} not found (the NLBSE'24 issue dataset is not available here)")
        return 0
    items = load(args.csv, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        engine = make_engine(db_url)
        migrate.upgrade(engine)
        with transaction(session_factory(engine)) as s:
            store.upsert_items(s, items)
        engine.dispose()
        with FakeGemini() as fake:
            if args.skip_classic:
                return bench_today(items, db_url, fake, args.latency)
            runs = [
                run_once("1 packed+cache", db_url, fake, {}, examples=True),
                run_once("2 packed", db_url, fake, {"gemini": {"use_cache": False}}, True),
                run_once(
                    "3 one-per-call",
                    db_url,
                    fake,
                    {"max_items_per_call": 1, "gemini": {"use_cache": False}},
                    True,
                ),
            ]
            today_items(items, db_url)
            today(db_url, fake, args.latency)
    print(f"{len(items)} issues from {args.csv.name}; few-shot examples: 3 per category")
    print(table(runs))
    best = runs[0]
    calls_ok = best.rows()["calls per 1,000 items"] <= 10
    overhead_ok = best.rows()["overhead % of own text"] <= 15
    print(
        f"targets: calls per 1,000 items <= 10: {'met' if calls_ok else 'MISSED'};"
        f" overhead <= 15% with caching: {'met' if overhead_ok else 'MISSED'}"
    )
    return 0


def today_items(items: list[ItemIn], db_url: str) -> None:
    """Top the database up to 2,000 items with copies of the first ones (new keys and text)."""
    extra = []
    for n, it in enumerate(items[: max(2000 - len(items), 0)]):
        number = 100_000 + n
        key = f"github:{it.scope}#{number}"
        extra.append(
            it.model_copy(update={"key": key, "number": number, "title": it.title + " (2)"})
        )
    engine = make_engine(db_url)
    with transaction(session_factory(engine)) as s:
        store.upsert_items(s, extra)
    engine.dispose()


def bench_today(items: list[ItemIn], db_url: str, fake: FakeGemini, latency: float) -> int:
    today_items(items, db_url)
    today(db_url, fake, latency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
