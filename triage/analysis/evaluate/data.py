"""Labelled data for `triage eval`: an NLBSE-format CSV, or human-labelled items split by time."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.config import Config
from triage.db.schema import Item
from triage.errors import ConfigError, TriageError
from triage.providers.local.labels import category_of, label_to_category

CSV_COLUMNS = ("repo", "created_at", "label", "title", "body")


@dataclass(frozen=True)
class EvalRow:
    """One labelled item: its repository (scope), creation time, gold category and text."""

    repo: str
    created_at: datetime | None
    label: str
    title: str
    body: str
    key: str = ""

    @property
    def doc(self) -> tuple[str, str]:
        return (self.title, self.body)


def _parse_time(raw: str) -> datetime | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def read_csv(path: Path) -> list[EvalRow]:
    """Rows of an NLBSE-format file (repo,created_at,label,title,body); bad files fail clearly."""
    if not path.exists():
        raise ConfigError(f"{path} does not exist")
    csv.field_size_limit(sys.maxsize)  # issue bodies with logs exceed the 128 KiB default
    rows: list[EvalRow] = []
    try:
        # utf-8-sig: the byte-order mark a spreadsheet writes is not part of the first column name
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                raise ConfigError(f"{path} is empty (expected columns {','.join(CSV_COLUMNS)})")
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(
                    f"{path}: missing column(s) {', '.join(missing)}"
                    f" (expected {','.join(CSV_COLUMNS)})"
                )
            for n, rec in enumerate(reader, start=2):
                label = (rec["label"] or "").strip()
                if not label:
                    raise ConfigError(f"{path}:{n}: empty label")
                rows.append(
                    EvalRow(
                        repo=(rec["repo"] or "").strip() or "(none)",
                        created_at=_parse_time(rec["created_at"] or ""),
                        label=label,
                        title=rec["title"] or "",
                        body=rec["body"] or "",
                        key=f"{path.name}:{n}",
                    )
                )
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text: {exc.reason}") from None
    except csv.Error as exc:
        raise ConfigError(f"{path}: malformed CSV: {exc}") from None
    if not rows:
        raise ConfigError(f"{path} has no rows")
    return rows


def check_categories(rows: Sequence[EvalRow], config: Config) -> None:
    """Every gold label must be a configured category: a typo would be a class nobody predicts."""
    known = config.taxonomy.categories
    for r in rows:
        if r.label not in known:
            raise ConfigError(
                f"{r.key}: label {r.label!r} is not in [taxonomy] categories"
                f" ({', '.join(known)}); add it there or fix the file"
            )


def parse_source(key: str) -> tuple[str, str]:
    """`github:OWNER/REPO` or `stackexchange:SITE` -> (source, scope)."""
    source, sep, scope = key.partition(":")
    if not sep or source not in ("github", "stackexchange") or not scope:
        raise ConfigError(
            f"--source must look like github:OWNER/REPO or stackexchange:SITE, not {key!r}"
        )
    return source, scope.lower() if source == "github" else scope  # stored in one spelling


def rows_from_db(session: Session, config: Config, key: str) -> list[EvalRow]:
    """Items of one source that humans labelled with exactly one category, oldest first."""
    source, scope = parse_source(key)
    mapping = label_to_category(config)
    stmt = (
        select(Item)
        .where(Item.source == source, Item.scope == scope, Item.is_pull_request.is_(False))
        .order_by(Item.created_at, Item.key)
    )
    rows: list[EvalRow] = []
    for item in session.scalars(stmt.execution_options(yield_per=500)):
        cat = category_of([*(item.labels or []), *(item.tags or [])], mapping)
        if cat is not None:
            rows.append(
                EvalRow(key, item.created_at, cat, item.title, item.body or "", key=item.key)
            )
    if not rows:
        raise TriageError(
            f"no items of {key} carry a label from [labels] map; sync or backfill it first,"
            " or check the map"
        )
    return rows


def time_split(rows: Sequence[EvalRow], train_share: float = 0.8) -> tuple[list[EvalRow], ...]:
    """Oldest `train_share` for training, the rest for testing; no test item predates training.

    Items created at the same instant as the first test item go to the test side, so nothing in
    training is ever newer than, or as new as, anything it is tested on.
    """
    if not 0 < train_share < 1:
        raise ConfigError("the train share must be between 0 and 1")
    dated = [r for r in rows if r.created_at is not None]
    if len(dated) < 2:
        raise TriageError("a time split needs at least two items with a creation date")
    ordered = sorted(dated, key=lambda r: (r.created_at or datetime.min, r.key))
    cut = max(1, min(len(ordered) - 1, round(len(ordered) * train_share)))
    boundary = ordered[cut].created_at or datetime.min
    train = [r for r in ordered if (r.created_at or datetime.min) < boundary]
    test = [r for r in ordered if (r.created_at or datetime.min) >= boundary]
    if not train:
        raise TriageError("every item has the same creation time: no time split is possible")
    return train, test
