"""Issue-template boilerplate, learned from a source's own items and removed before vectors.

Reports filed with one template share headings, checklists, system-info tables, version lines,
user-agent strings and stack frames of the tool itself. Left in, they make every report filed
with the template look alike (offline themes on vscode were held together by the GPU status
table). Nothing here is hand-listed: a line, a `key: value` head or a `<details>` block counts
as boilerplate when enough of the source's items carry it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MIN_SHARE = 0.02  # a line in 2 % of a source's items is template, not one report's wording
MIN_DOCS = 5  # ...and in at least this many (so a few duplicates sharing an error survive)
MAX_KEY_WORDS = 8  # `VS Code version:`, `|GPU Status|`: a field name, not a sentence

_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_DETAILS = re.compile(r"<details>\s*(?:<summary>(.*?)</summary>)?.*?(?:</details>|$)", re.S | re.I)
_TAGS = re.compile(r"<[^>]{0,40}>")
_NUMBERS = re.compile(r"\b[0-9a-f]{7,40}\b|\d+")
_BOXES = re.compile(r"\[[ xX]\]")
_SPACE = re.compile(r"\s+")
# `Key: value` or `|Key|value|`; the key starts with a letter and is a few words long.
_KEYED = re.compile(r"^\W{0,4}([a-z][\w ()./'-]{0,60}?)\s*(?:\||=|:(?!//))")
_EMPHASIS = re.compile(r"[*`]+")


def line_id(line: str) -> str:
    """A line's identity across items: case, spacing, numbers, hashes and ticks do not count."""
    text = _BOXES.sub("[ ]", _EMPHASIS.sub("", _TAGS.sub(" ", line.lower())))
    return _SPACE.sub(" ", _NUMBERS.sub("0", text)).strip(" \t#*>-_")


def key_of(line_identity: str) -> str | None:
    """The field name of a `key: value` or table line, or None for prose."""
    m = _KEYED.match(line_identity)
    if m is None:
        return None
    key = m.group(1).strip()
    return key if key and len(key.split()) <= MAX_KEY_WORDS else None


def _summary_id(summary: str | None) -> str:
    return line_id(summary or "details")


@dataclass(frozen=True)
class Boilerplate:
    """What one source's items share: whole lines, field names, `<details>` block titles."""

    lines: frozenset[str] = field(default_factory=frozenset)
    keys: frozenset[str] = field(default_factory=frozenset)
    blocks: frozenset[str] = field(default_factory=frozenset)

    def strip(self, body: str) -> str:
        """The body without template comments, shared blocks, shared lines and field runs."""
        text = _COMMENT.sub("\n", body or "")
        text = _DETAILS.sub(
            lambda m: "\n" if _summary_id(m.group(1)) in self.blocks else m.group(0), text
        )
        lines = text.splitlines()
        ids = [line_id(ln) for ln in lines]
        keyed = [self._common_key(i) for i in ids]
        out = []
        for n, (line, ident) in enumerate(zip(lines, ids, strict=True)):
            if ident in self.lines:
                continue
            # A common field name inside a run of fields is a system-info table or version
            # block; alone (`Steps to reproduce: ...`) it introduces the report's own words.
            near = (n > 0 and keyed[n - 1]) or (n + 1 < len(lines) and keyed[n + 1])
            if keyed[n] and (near or ident.startswith("|")):
                continue
            out.append(line)
        return "\n".join(out)

    def _common_key(self, ident: str) -> bool:
        key = key_of(ident)
        return key is not None and key in self.keys


def learn(
    bodies: Sequence[str], min_share: float = MIN_SHARE, min_docs: int = MIN_DOCS
) -> Boilerplate:
    """The lines, field names and block titles at least `min_share` of the bodies carry."""
    lines: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    blocks: Counter[str] = Counter()
    for body in bodies:
        ids, named, titles = _carriers(body)
        lines.update(ids)
        keys.update(named)
        blocks.update(titles)
    floor = max(min_docs, int(min_share * len(bodies)))

    def common(counts: Counter[str]) -> frozenset[str]:
        return frozenset(k for k, n in counts.items() if n >= floor and k)

    return Boilerplate(common(lines), common(keys), common(blocks))


def scope_of(key: str) -> str:
    """The collection an item key belongs to (`github:o/r#1` -> `github:o/r`)."""
    return re.sub(r"[#/]\d+$", "", key)


def strip_by_scope(keys: Iterable[str], bodies: Sequence[str]) -> list[str]:
    """Every body with its own scope's boilerplate (learned from that scope's items) removed."""
    groups: dict[str, list[int]] = defaultdict(list)
    for n, key in enumerate(keys):
        groups[scope_of(key)].append(n)
    out = list(bodies)
    for members in groups.values():
        learned = learn([bodies[n] for n in members])
        for n in members:
            out[n] = learned.strip(bodies[n])
    return out


def _carriers(body: str) -> tuple[set[str], set[str], set[str]]:
    """The line identities, field names and block titles one body carries."""
    text = _COMMENT.sub("\n", body or "")
    blocks = {_summary_id(m.group(1)) for m in _DETAILS.finditer(text)}
    ids = {line_id(ln) for ln in text.splitlines()} - {""}
    return ids, {k for k in map(key_of, ids) if k}, blocks


def label_neutral(
    learned: Boilerplate, bodies: Sequence[str], labels: Sequence[str], max_lift: float
) -> Boilerplate:
    """Only the boilerplate that says nothing about the label.

    Which template a report was filed with is a cue to its category (the bug template's
    headings), so a classifier keeps a shared line whose carriers lean to one label by
    `max_lift` or more over that label's base rate. The rest (system-info tables, version
    lines, checklists every template has) is noise to it, as it is to themes and duplicates.
    """
    base = Counter(labels)
    total = len(labels)
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for body, label in zip(bodies, labels, strict=True):
        ids, keys, blocks = _carriers(body)
        for part, kind in ((ids, "l"), (keys, "k"), (blocks, "b")):
            for name in part:
                seen[kind + name][label] += 1

    def neutral(kind: str, names: frozenset[str]) -> frozenset[str]:
        def lift(counts: Counter[str]) -> float:
            n = sum(counts.values())
            return max((counts[y] / n) / (base[y] / total) for y in base)

        return frozenset(x for x in names if seen[kind + x] and lift(seen[kind + x]) < max_lift)

    return Boilerplate(
        neutral("l", learned.lines), neutral("k", learned.keys), neutral("b", learned.blocks)
    )
