"""How `triage status` words a run: how long it took, and what a duplicates or themes run saw."""

from __future__ import annotations

from typing import Any

# What each job's last run looked at, from its job_runs counts, in the order said. A key the
# run did not record is left out: older runs, or a stage that does not count it.
PHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    "duplicates": (
        ("open_items", "open items"),
        ("searched", "looked for neighbours"),
        ("candidates", "candidate pairs"),
        ("linked", "new links"),
    ),
    "themes": (
        ("pending", "pending items"),
        ("assigned", "themed"),
        ("new_themes", "new themes"),
    ),
}


def took(seconds: float | None) -> str:
    """`12.3 s`, `4 min 05 s`, `2 h 03 min`; empty for a run not finished (or never run)."""
    if seconds is None:
        return ""
    if seconds < 59.95:  # what would round to 60.0 s is said as 1 min 00 s
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def summary(job: str, run: dict[str, Any]) -> str | None:
    """One line on what the job's last run looked at, or None when its counts say nothing."""
    counts = run.get("counts") or {}
    parts = [
        f"{int(counts[key]):,} {words}"
        for key, words in PHRASES.get(job, ())
        if isinstance(counts.get(key), int)
    ]
    if not parts:
        return None
    when = [run["outcome"]] if run.get("outcome") not in (None, "ok") else []
    if run.get("took_seconds") is not None:
        when.append(f"took {took(run['took_seconds'])}")
    return f"{job}: {', '.join(parts)}" + (f" ({', '.join(when)})" if when else "")
