"""A Digest as Slack Block Kit messages within Slack's limits, every untrusted string escaped.

Limits: 50 blocks per message, 3,000 characters per section text, 150 per header. Slack also
refuses messages whose blocks hold more than about 13,000 characters in total
(`msg_blocks_too_long`), so a message is kept under MESSAGE_CHARS. What does not fit goes into
further messages (thread replies for a bot token); nothing is cut off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triage.digest import CountRow, Digest, ItemRef
from triage.sinks.formatting import (
    MAX_REASON,
    MAX_TITLE,
    duplicate_note,
    duplicates_heading,
    headline,
    item_meta,
    safe_url,
    sections,
    shorten,
    signed,
    source_name,
    spend_line,
    stamp,
    theme_line,
    window_line,
)

MAX_BLOCKS = 50
SECTION_CHARS = 3000
HEADER_CHARS = 150
MESSAGE_CHARS = 12_000
MAX_URL = 1000

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack's three control characters, so no text can mention (`<!channel>`) or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(ref: ItemRef) -> str:
    """`<url|title>` for links we build: the escaped title cannot close the link or open another."""
    title = escape(shorten(ref.title, MAX_TITLE))
    url = safe_url(ref.url)
    if url is None or len(url) > MAX_URL:
        return title
    url = escape(url).replace("|", "%7C")
    return f"<{url}|{title}>"


@dataclass
class Message:
    text: str  # plain-text fallback for notifications and clients without blocks
    blocks: list[Block] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return sum(_block_chars(b) for b in self.blocks)


@dataclass
class Part:
    """One titled section of the digest: entries are kept whole when packed."""

    title: str
    entries: list[str]


def _block_chars(block: Block) -> int:
    text = block.get("text", {}).get("text", "")
    return len(text) + sum(len(e.get("text", "")) for e in block.get("elements", []))


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _counts(rows: list[CountRow]) -> str:
    if not rows:
        return "none"
    return " · ".join(
        f"{escape(source_name(r.name))} {r.current:,} ({signed(r.delta)})" for r in rows
    )


def _more(n: int) -> list[str]:
    return [f"… and {n} more (`triage export` lists them all)"] if n > 0 else []


def parts(d: Digest) -> list[Part]:
    """The digest as titled parts with escaped mrkdwn entries, in reading order."""
    shown = sections(d)
    out = []
    counts = [
        f"*{label}:* {_counts(rows)}"
        for label, rows, key in (
            ("By source", d.by_source, "by_source"),
            ("By category", d.by_category, "by_category"),
        )
        if key in shown
    ]
    if counts:
        out.append(Part("New items", counts))
    if "themes" in shown:
        themes = []
        for i, t in enumerate(d.themes, 1):
            lines = [f"*{i}. {escape(shorten(t.title, MAX_TITLE))}* (theme {t.id})"]
            lines.append(escape(theme_line(t)))
            lines += [f"• {link(e)} ({escape(item_meta(e))})" for e in t.examples]
            themes.append("\n".join(lines))
        out.append(Part(f"Top themes ({len(d.themes)} of {d.active_themes} active)", themes))
    if "high_priority" in shown:
        bugs = [
            f"• *{escape(r.priority or '')}* {link(r)}"
            + (f": {escape(shorten(r.summary, MAX_REASON))}" if r.summary else "")
            for r in d.high_priority.items
        ]
        title = f"High-priority bugs ({d.high_priority.total})"
        out.append(Part(title, bugs + _more(d.high_priority.more)))
    if "duplicates" in shown:
        dups = [
            f"• {link(x.a)} ↔ {link(x.b)} ({escape(duplicate_note(x))}):"
            f" {escape(shorten(x.reason, MAX_REASON))}"
            for x in d.duplicates
        ]
        title = duplicates_heading(d)
        out.append(Part(title, dups + _more(d.duplicates_more)))
    if "unanswered" in shown:
        waiting = [f"• {link(r)} (asked {stamp(r.created_at)})" for r in d.unanswered.items]
        hours = f"{d.unanswered_after_hours:g}"
        title = f"Unanswered questions older than {hours}h ({d.unanswered.total})"
        out.append(Part(title, waiting + _more(d.unanswered.more)))
    if "spend" in shown:
        out.append(Part("Model spend", [escape(spend_line(d))]))
    return out


def part_blocks(part: Part) -> list[Block]:
    """Sections of at most SECTION_CHARS; an entry longer than that is split by lines."""
    head = f"*{escape(part.title)}*"
    entries = part.entries or ["none"]
    texts: list[str] = []
    current = head
    for entry in entries:
        for piece in _fit(entry, SECTION_CHARS):
            if len(current) + 1 + len(piece) > SECTION_CHARS:
                texts.append(current)
                current = piece
            else:
                current = f"{current}\n{piece}"
    texts.append(current)
    return [_section(t) for t in texts]


def _fit(entry: str, limit: int) -> list[str]:
    if len(entry) <= limit:
        return [entry]
    pieces: list[str] = []
    for line in entry.split("\n"):
        while len(line) > limit:  # only a pathological line: split it rather than drop it
            pieces.append(line[:limit])
            line = line[limit:]
        if pieces and len(pieces[-1]) + 1 + len(line) <= limit:
            pieces[-1] = f"{pieces[-1]}\n{line}"
        else:
            pieces.append(line)
    return pieces


def _head(d: Digest) -> list[Block]:
    span = f" ({d.coverage})" if d.coverage else ""
    title = shorten(f"Triage digest {stamp(d.start)} → {stamp(d.end)} UTC{span}", HEADER_CHARS)
    return [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
        _section(f"*{escape(headline(d))}*"),
    ]


def _fits(msg: Message, blocks: list[Block], reserve: int) -> bool:
    count = len(msg.blocks) + len(blocks) + reserve
    chars = msg.chars + sum(_block_chars(b) for b in blocks) + reserve * 200
    return count <= MAX_BLOCKS and chars <= MESSAGE_CHARS


def build_messages(d: Digest, threaded: bool = True) -> list[Message]:
    """The parent message first, then the continuation messages in order."""
    messages = [
        Message(text=escape(f"Triage digest {window_line(d)}: {headline(d)}"), blocks=_head(d))
    ]
    for part in parts(d):
        # Fill each message before starting the next, so the parent carries as much as it can;
        # a part that spills over says so at the top of the next message.
        placed = False
        for block in [{"type": "divider"}, *part_blocks(part)]:
            reserve = 1 if len(messages) == 1 else 0  # room for the "continued" note on the parent
            if not _fits(messages[-1], [block], reserve):
                messages.append(Message(text=""))
                if placed:
                    messages[-1].blocks.append(_section(f"*{escape(part.title)}* (continued)"))
            if block["type"] == "divider" and not messages[-1].blocks:
                continue
            messages[-1].blocks.append(block)
            placed = placed or block["type"] == "section"
    total = len(messages)
    if total > 1:
        where = "in the thread" if threaded else "in the next messages"
        note = f"Continued {where}: {total - 1} more message{'s' if total > 2 else ''}."
        messages[0].blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}
        )
    for i, msg in enumerate(messages[1:], 2):
        msg.text = escape(f"Triage digest {window_line(d)} (part {i}/{total})")
    return messages
