"""Wording every digest renderer shares, so Slack, Markdown and HTML say the same thing."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from triage.digest import Digest, DuplicateEntry, ItemRef, ThemeEntry
from triage.plain_text import strip_invisible

SOURCE_NAMES = {"github": "GitHub", "stackexchange": "Stack Overflow"}
# Long untrusted fields are shortened visibly ("…"); the full text is one click away.
MAX_TITLE = 200
MAX_REASON = 400


def shorten(text: str, limit: int) -> str:
    """One line of untrusted text, without invisible or reordering characters, at most `limit`."""
    text = " ".join(strip_invisible(text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def source_name(source: str) -> str:
    return SOURCE_NAMES.get(source, source)


def signed(n: int) -> str:
    return f"+{n}" if n > 0 else ("±0" if n == 0 else f"−{-n}")


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M")


def window_line(d: Digest) -> str:
    """The period, and why it is longer than the window when it reaches back further."""
    why = f"{d.window} window, stretched to {d.coverage}" if d.coverage else d.window
    return f"{stamp(d.start)} → {stamp(d.end)} UTC ({why})"


def headline(d: Digest) -> str:
    """The one-sentence summary, also the notification text."""
    parts = [
        f"{plural(d.total.current, 'new item')} ({signed(d.total.delta)} vs previous {d.window})"
    ]
    if d.themes:
        parts.append(plural(d.active_themes, "active theme"))
    if d.high_priority.total:
        parts.append(plural(d.high_priority.total, "high-priority bug"))
    if d.duplicates_total:
        word = "possible duplicate" if judged(d) else "similar report pair"
        parts.append(plural(d.duplicates_total, word))
    if d.unanswered.total:
        parts.append(plural(d.unanswered.total, "unanswered question"))
    if not d.total.current and d.empty_hint:
        parts.append(d.empty_hint)
    return ", ".join(parts)


def sections(d: Digest) -> set[str]:
    """The sections with something to say: every renderer leaves the others out alike."""
    present = {
        "by_source": bool(d.by_source),
        "by_category": bool(d.by_category),
        "themes": bool(d.themes),
        "high_priority": d.high_priority.total > 0,
        "duplicates": d.duplicates_total > 0,
        "unanswered": d.unanswered.total > 0,
        "spend": d.spend.calls > 0,
    }
    return {name for name, shown in present.items() if shown}


def judged(d: Digest) -> bool:
    """Whether a model judged any listed pair; pairs found by wording alone are no duplicates."""
    return any(x.judged for x in d.duplicates)


def duplicates_heading(d: Digest) -> str:
    return f"{'Possible duplicates' if judged(d) else 'Similar reports'} ({d.duplicates_total})"


def duplicate_note(x: DuplicateEntry) -> str:
    """`82%` for a model's confidence; `similar reports, 45% alike` when no model judged."""
    return f"{x.confidence:.0%}" if x.judged else f"similar reports, {x.similarity:.0%} alike"


def theme_line(t: ThemeEntry) -> str:
    sources = ", ".join(f"{source_name(s)} {n}" for s, n in t.by_source.items())
    return f"{plural(t.current, 'item')} ({signed(t.delta)}, {t.trend}) · {sources}"


def item_meta(ref: ItemRef) -> str:
    return f"{ref.scope}, {ref.state}, {ref.created_at:%Y-%m-%d}"


def spend_line(d: Digest) -> str:
    s = d.spend
    if not s.calls:
        return "no model calls in this window"
    return (
        f"{plural(s.calls, 'model call')}, {s.input_tokens:,} input tokens"
        f" ({s.cached_tokens:,} cached), {s.output_tokens:,} output tokens,"
        f" ${s.cost_usd:.2f} estimated"
    )


def safe_url(url: str) -> str | None:
    """Only http(s) links are rendered as links; anything else is shown as text."""
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url
