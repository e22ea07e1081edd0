"""LLM cost benchmark: packed batch prompts against one item per call, on the fake Gemini API.

Analyses the 1,500 labelled issues of the NLBSE'24 issue-report dataset (five repositories)
through the real pipeline (`triage.analysis.classify.run`, google-genai, the fake server) and
reports, per run: generateContent calls per 1,000 items (target <= 10), prompt tokens billed per
item beyond the item's own text (target: <= 15% of it with caching on), output tokens per item
and estimated cost. Token counts are the fake's (about four characters per token).

    python bench/llm_cost.py [--csv ../shared/data/nlbse24/issues_train.csv] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
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


def run_once(
    name: str, db_url: str, fake: FakeGemini, llm: dict[str, Any], examples: bool
) -> Figures:
    fake.reset()
    config = Config.model_validate(
        {
            "database": {"url": db_url},
            "llm": {
                **llm,
                "daily_token_budget": 0,
                "few_shot_per_category": 3 if examples else 0,
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
    stats = classify.run(ctx, provider)
    with ctx.sessions() as s:
        items = list(s.scalars(select(Item)))
        calls = list(s.scalars(select(LLMCall)))
    gen = [c for c in calls if c.purpose == "classify"]
    g = config.llm.gemini
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
        input_price=g.input_price,
        cached_price=g.cached_input_price,
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N issues")
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


if __name__ == "__main__":
    sys.exit(main())
