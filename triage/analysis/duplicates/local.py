"""Duplicates without a model: TF-IDF nearest neighbours, mutual ones counted as likely pairs.

Measured on real Stack Overflow duplicates and on bench/data (bench/duplicates.py): word
unigrams (stop words out, title counted twice, code kept, the source's template removed) beat
bigrams, character n-grams and BM25; of all pairs above a cosine floor only about half are
duplicates, while pairs that are each other's nearest neighbour are mostly real ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from triage import boilerplate
from triage.analysis import phrases, vectors
from triage.analysis.duplicates.model import Candidate, DupDoc, Judged, Link

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


def tfidf_space(docs: Sequence[DupDoc]) -> vectors.Tfidf:
    bodies = boilerplate.strip_by_scope([d.key for d in docs], [d.body for d in docs])
    texts = [
        vectors.item_text(d.title, d.summary, body, keep_code=True)
        for d, body in zip(docs, bodies, strict=True)
    ]
    return vectors.fit_tfidf(texts, ngrams=(1, 1))


def nearest(matrix: vectors.Matrix, k: int) -> list[list[tuple[int, float]]]:
    """Every row's k nearest other rows above MIN_SIMILARITY, nearest first."""
    out: list[list[tuple[int, float]]] = [[] for _ in range(matrix.shape[0])]
    for i, j, sim in vectors.neighbours(matrix, k, MIN_SIMILARITY):
        out[i].append((j, sim))
    for row in out:
        row.sort(key=lambda js: -js[1])
    return out


def offline_candidates(
    space: vectors.Tfidf, docs: Sequence[DupDoc], near: list[list[tuple[int, float]]]
) -> list[Candidate]:
    """One candidate per neighbour pair; `mutual` when each is the other's nearest by MARGIN."""
    best = [row[0][0] if row else -1 for row in near]
    runner_up = [row[1][1] if len(row) > 1 else 0.0 for row in near]
    pairs: dict[tuple[int, int], float] = {}
    for i, row in enumerate(near):
        for j, sim in row:
            a, b = (i, j) if docs[i].key < docs[j].key else (j, i)
            pairs[(a, b)] = max(sim, pairs.get((a, b), 0.0))
    out = []
    for (a, b), sim in sorted(pairs.items(), key=lambda kv: -kv[1]):
        mutual = best[a] == b and best[b] == a and sim - max(runner_up[a], runner_up[b]) >= MARGIN
        shared = vectors.shared_terms(space, a, b)
        out.append(Candidate(docs[a], docs[b], sim, shared, mutual=mutual))
    return out


def confidence(c: Candidate) -> float:
    """How likely a pair is one problem, from its similarity and whether it is mutual."""
    bonus = MUTUAL_BONUS if c.mutual else 0.0
    return round(float(np.clip(c.similarity + bonus, 0.0, MAX_CONFIDENCE)), 3)


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
