"""Extractive summaries: the title plus the body's most informative sentences, no model needed.

A sentence scores by how many of the body's frequent content words it holds (Luhn 1958), with a
bonus for words of the title and for coming early: reporters state the problem first and fill
the rest with logs and environment details, which are left out before scoring.
"""

from __future__ import annotations

import re
from collections import Counter

MAX_SUMMARY_CHARS = 600
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_FENCE = re.compile(r"```.*?(?:```|$)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_URL = re.compile(r"https?://\S+|!?\[([^\]]*)\]\([^)]*\)")
_HTML = re.compile(r"<[^>]+>")
_HEADING = re.compile(
    r"^\s*(#{1,6}\s.*|\*\*[^*]+\*\*:?\s*|[-*]\s*\[[ xX]\].*|>.*|\|.*\|)\s*$", re.M
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=\s*[-*\d])")
_WORD = re.compile(r"[a-zA-Z][a-zA-Z'-]+")
_STOP = frozenset(
    """a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers him his how i if in into is it its itself just me more
    most my no nor not now of off on once only or other our out over own same she should so some
    such than that the their them then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours
    get got use using used please thanks thank hi hello""".split()  # noqa: SIM905
)


def _prose(body: str) -> str:
    """The body without comments, code, links' targets, headings, checklists and tables."""
    text = _COMMENT.sub(" ", body)
    text = _FENCE.sub("\n\n", text)
    text = _URL.sub(lambda m: m.group(1) or "", text)
    text = _HTML.sub(" ", text)
    text = _HEADING.sub("\n\n", text)
    return _INLINE_CODE.sub(lambda m: m.group(0).strip("`"), text)


def sentences(body: str) -> list[str]:
    """Readable sentences: 4 to 60 words, mostly letters (log lines and tables fail that)."""
    out = []
    for raw in _SENTENCE_END.split(_prose(body)):
        sentence = " ".join(raw.split()).lstrip("-* ").strip()
        words = sentence.split()
        if not 4 <= len(words) <= 60:
            continue
        letters = sum(ch.isalpha() for ch in sentence)
        if letters < 0.6 * len(sentence):
            continue
        out.append(sentence)
    return out


def _content_words(text: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP and len(w) > 2]


def summarize(title: str, body: str, n_sentences: int = 2) -> str:
    """The title, then the `n_sentences` best sentences in the order they were written."""
    title = " ".join(title.split())
    head = title if not title or title[-1] in ".!?" else title + "."
    if n_sentences <= 0:
        return head[:MAX_SUMMARY_CHARS]
    candidates = sentences(body)
    if not candidates:
        return head[:MAX_SUMMARY_CHARS]
    freq = Counter(w for s in candidates for w in _content_words(s))
    title_words = set(_content_words(title))
    scored = []
    for pos, sentence in enumerate(candidates):
        words = _content_words(sentence)
        if not words:
            continue
        weight = sum(freq[w] for w in set(words)) / len(words) ** 0.5
        weight += 2.0 * len(title_words & set(words))
        weight *= 1.0 / (1.0 + 0.15 * pos)  # the first sentences usually state the problem
        scored.append((weight, pos, sentence))
    best = sorted(sorted(scored, reverse=True)[:n_sentences], key=lambda t: t[1])
    text = " ".join([head, *(s for _, _, s in best)]).strip()
    if len(text) > MAX_SUMMARY_CHARS:
        text = text[: MAX_SUMMARY_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return text
