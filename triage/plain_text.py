"""Untrusted text without the characters that hide or reorder what a reader (or a model) sees."""

from __future__ import annotations

import re
import unicodedata

# Zero-width characters (U+200B-U+200D, U+2060, U+FEFF, U+180E, soft hyphen) and the bidirectional
# controls (U+202A-U+202E embeddings and overrides, U+2066-U+2069 isolates, U+200E/U+200F marks,
# U+061C): see Unicode TR #9 and the "Trojan Source" advisory (CVE-2021-42574).
INVISIBLE = re.compile(
    "[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


def strip_invisible(text: str) -> str:
    """`text` without zero-width and bidirectional control characters."""
    return INVISIBLE.sub("", text)


def normalized(text: str) -> str:
    """NFKC (fullwidth `＜` becomes `<`) and no invisible characters: what a reader sees."""
    return strip_invisible(unicodedata.normalize("NFKC", text))
