"""Which terms read as words in a theme name or a duplicate reason.

The TF-IDF tokenizer splits `doesn't` into `doesn` and `t`, and keeps code identifiers such as
`generate_content_stream`; both are fine for similarity but read as debris in a sentence. A
term is shown when every word of it is a whole word, and an identifier only when the items are
about it (it is in most of their titles).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# What is left of an English contraction once the apostrophe splits it.
FRAGMENTS = frozenset(
    {
        *("doesn", "didn", "isn", "wasn", "weren", "aren", "hasn", "haven", "hadn", "won"),
        *("wouldn", "couldn", "shouldn", "can", "don", "ain", "t", "s", "ve", "ll", "re", "m"),
        "d",
    }
)
_IDENTIFIER = re.compile(r"[_.]|\d|[a-z][A-Z]")


def identifier(word: str) -> bool:
    """`generate_content`, `v1.2`, `getItem`: code rather than prose."""
    return bool(_IDENTIFIER.search(word))


def readable(terms: Iterable[str], titles: Sequence[str]) -> list[str]:
    """The terms that read as words, in their order; an identifier stays when most titles name
    it (the items are about that identifier)."""
    lowered = [t.lower() for t in titles]
    out = []
    for term in terms:
        words = term.split()
        if any(w.lower() in FRAGMENTS or len(w) < 2 for w in words):
            continue
        code = [w for w in words if identifier(w)]
        if code and not all(sum(w.lower() in t for t in lowered) * 2 > len(lowered) for w in code):
            continue
        out.append(term)
    return out
