"""What every sink is given and gives back, so that one `deliver` drives them all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    out: Path | None = None  # the file, for the markdown and html sinks
    dry_run: bool = False
    force: bool = False  # deliver again a window already delivered
    echo: Echo = print  # where a dry run shows what it would send


@dataclass
class Outcome:
    status: Literal["posted", "skipped", "dry-run", "written"]
    detail: str  # one line for the user or the log ("" when the digest itself was the output)
    posted: int = 0
