"""Fit items into prompts: cap each item's text, then pack items into token-budgeted batches.

Token counts are estimated at about four characters per token (the ratio Gemini documents for
English text); packing only needs to stay under a budget, not to be exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

CHARS_PER_TOKEN = 4
MAX_TITLE_CHARS = 300
# A fenced block or a run of log lines longer than this keeps only its first and last lines.
MAX_BLOCK_LINES = 24
KEEP_BLOCK_LINES = 6
# A single line longer than this (minified code, base64, one-line JSON) keeps its ends only.
MAX_LINE_CHARS = 600

_FENCE = re.compile(r"^(\s*)(```|~~~)")
_LOG_LINE = re.compile(
    r"""^\s*(at\s|File\s"|\#\d+\s|Traceback|Caused\sby|\.\.\.\s\d+\smore|[EWIDF]\d{4}\s|
    \d{4}-\d\d-\d\d[T\s]\d|\[\s*\d|\d\d:\d\d:\d\d|0x[0-9a-f]{6,}|\w+(Error|Exception)\b)""",
    re.VERBOSE | re.IGNORECASE,
)


def estimate_tokens(text: str) -> int:
    """Rough token count (ceil of chars / 4)."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def cut_marker(what: str) -> str:
    return f"[... {what} cut ...]"


def _trim_run(lines: list[str], kind: str) -> list[str]:
    if len(lines) <= MAX_BLOCK_LINES:
        return lines
    dropped = len(lines) - 2 * KEEP_BLOCK_LINES
    return [
        *lines[:KEEP_BLOCK_LINES],
        cut_marker(f"{dropped} lines of {kind}"),
        *lines[-KEEP_BLOCK_LINES:],
    ]


def _trim_line(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    keep = MAX_LINE_CHARS // 2
    return f"{line[:keep]} {cut_marker(f'{len(line) - 2 * keep} characters')} {line[-keep:]}"


def trim_code_and_logs(body: str) -> str:
    """Shorten long fenced code blocks, runs of log/stack-trace lines and very long lines."""
    out: list[str] = []
    block: list[str] = []
    log_run: list[str] = []
    in_fence = False
    for raw in body.splitlines():
        line = _trim_line(raw)
        if _FENCE.match(line):
            if in_fence:
                out.extend(_trim_run(block, "code"))
                block = []
            else:
                out.extend(_trim_run(log_run, "log"))
                log_run = []
            out.append(line)
            in_fence = not in_fence
        elif in_fence:
            block.append(line)
        elif _LOG_LINE.match(line):
            log_run.append(line)
        else:
            out.extend(_trim_run(log_run, "log"))
            log_run = []
            out.append(line)
    out.extend(_trim_run(block, "code"))  # an unclosed fence still gets trimmed
    out.extend(_trim_run(log_run, "log"))
    return "\n".join(out)


def _cut_at_space(text: str, limit: int, from_end: bool = False) -> str:
    """Cut to at most `limit` chars on a whitespace boundary when one is near."""
    if len(text) <= limit:
        return text
    if from_end:
        piece = text[-limit:]
        space = piece.find(" ")
        return piece[space + 1 :] if 0 <= space < 40 else piece
    piece = text[:limit]
    space = piece.rfind(" ")
    return piece[:space] if space > limit - 40 else piece


def cap_title(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE_CHARS else _cut_at_space(title, MAX_TITLE_CHARS) + " …"


def cap_body(title: str, body: str, max_chars: int) -> str:
    """Keep the title whole and the body's head and tail within `max_chars`; mark any cut."""
    original = len(body.strip())
    body = trim_code_and_logs(body.strip())
    room = max_chars - len(title)
    if len(body) <= room:
        return body
    marker = cut_marker(f"{len(body)} characters, middle")  # sized for the worst case
    room = max(room - len(marker) - 2, 80)
    head = _cut_at_space(body, room * 2 // 3)
    tail = _cut_at_space(body, room - len(head), from_end=True)
    removed = max(original - len(head) - len(tail), len(body) - len(head) - len(tail))
    return f"{head}\n{cut_marker(f'{removed} characters')}\n{tail}"


def pack(
    items: Sequence[T], cost: Callable[[T], int], max_tokens: int, max_items: int
) -> list[list[T]]:
    """Greedy, order-keeping batches of at most `max_items` items and `max_tokens` tokens.

    An item bigger than the whole budget still gets a batch of its own, so nothing is dropped.
    """
    batches: list[list[T]] = []
    current: list[T] = []
    used = 0
    for item in items:
        c = cost(item)
        if current and (len(current) >= max_items or used + c > max_tokens):
            batches.append(current)
            current, used = [], 0
        current.append(item)
        used += c
    if current:
        batches.append(current)
    return batches
