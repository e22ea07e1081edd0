"""Duplicates without a model: TF-IDF nearest neighbours, mutual ones counted as likely pairs.

Measured on real Stack Overflow duplicates and on bench/data (bench/duplicates.py): word
unigrams (stop words out, title counted twice, code kept, the source's template removed) beat
bigrams, character n-grams and BM25; of all pairs above a cosine floor only about half are
duplicates, while pairs that are each other's nearest neighbour are mostly real ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from triage.analysis import phrases, vectors, words
from triage.analysis.duplicates.model import Candidate, Judged, Link
from triage.analysis.item_refs import ItemText

# TF-IDF cosines run lower than embedding ones: candidates and neighbours start here.
MIN_SIMILARITY = 0.15
# Two reports of one problem are each other's nearest neighbour, and clearly nearer to each
# other than to the runner-up of either; reports that merely share a theme are all about as
# alike. On bench/data this margin took precision from 0.62 to 0.83 at a recall of 0.73.
MARGIN = 0.15
# Such a pair gets this added to its confidence: at the default duplicate_min_confidence
# (0.7) it needs a cosine of 0.2, any other pair 0.7 (nearly the same text).
MUTUAL_BONUS = 0.5
MAX_CONFIDENCE = 0.95  # a word match is never certain


def shared_words(
    matrix: vectors.Matrix,
    a: int,
    b: int,
    named_a: dict[int, str],
    named_b: dict[int, str],
    n: int = 4,
) -> list[str]:
    """The words two rows have in common that weigh most in both (why they look alike).

    `named_*`: the word behind each column of either text (words_in), the only text read for
    the pair."""
    ptr, cols, vals = matrix.indptr, matrix.indices, matrix.data
    ca, va = cols[ptr[a] : ptr[a + 1]], vals[ptr[a] : ptr[a + 1]]
    cb, vb = cols[ptr[b] : ptr[b + 1]], vals[ptr[b] : ptr[b + 1]]
    common, ia, ib = np.intersect1d(ca, cb, assume_unique=True, return_indices=True)
    out: list[str] = []
    for i in np.argsort(-(va[ia] * vb[ib])):
        col = int(common[i])
        if col in named_a and named_a[col] == named_b.get(col):
            out.append(named_a[col])
            if len(out) == n:
                break
    return out


def words_in(texts: Sequence[ItemText]) -> dict[str, dict[int, str]]:
    """Per item, the word behind each column of its text as duplicates count it."""
    written = [vectors.item_text(t.title, t.summary, t.stripped, keep_code=True) for t in texts]
    return {t.key: named for t, named in zip(texts, words.words_by_column(written), strict=True)}


def confidence_of(similarity: float, mutual: bool) -> float:
    """How likely a pair is one problem, from its similarity and whether it is mutual."""
    bonus = MUTUAL_BONUS if mutual else 0.0
    return round(float(np.clip(similarity + bonus, 0.0, MAX_CONFIDENCE)), 3)


def confidence(c: Candidate) -> float:
    return confidence_of(c.similarity, c.mutual)


def judge_offline(pairs: list[Candidate]) -> Judged:
    """No model judged these: the confidence comes from the vectors, the reason names the
    phrases both reports use (the digest calls them similar reports, not duplicates)."""
    links = []
    for c in pairs:
        shared = phrases.readable(c.shared, [c.a.title, c.b.title])  # words, not debris
        links.append(Link(c.a.key, c.b.key, c.similarity, confidence(c), reason(shared)))
    return Judged(links=links)


def reason(shared: Sequence[str]) -> str:
    """`both mention “a”, “b” and “c”`: the one place offline wording is made."""
    terms = [f"\u201c{t}\u201d" for t in shared]
    said = ", ".join(terms[:-1]) + f" and {terms[-1]}" if len(terms) > 1 else "".join(terms)
    return f"both mention {said}" if said else "nearly the same wording"
