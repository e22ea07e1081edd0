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
from triage.analysis.item_vectors import ItemText

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
    matrix: vectors.Matrix, a: int, b: int, text_a: ItemText, text_b: ItemText, n: int = 4
) -> list[str]:
    """The words two rows have in common that weigh most in both (why they look alike); the
    words are found in the two texts, the only ones read for the pair."""
    both = matrix[a].multiply(matrix[b]).tocoo()
    named_a = words.words_by_column([_written(text_a)])
    named_b = words.words_by_column([_written(text_b)])
    out: list[str] = []
    for i in np.argsort(-both.data):
        col = int(both.col[i])
        if col in named_a and named_a[col] == named_b.get(col):
            out.append(named_a[col])
            if len(out) == n:
                break
    return out


def _written(text: ItemText) -> str:
    return vectors.item_text(text.title, text.summary, text.stripped, keep_code=True)


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
