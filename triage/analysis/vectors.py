"""Text vectors for themes and duplicates: item text, fitted TF-IDF spaces, centroids.

Every vector handed around here is L2-normalised, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, TypeAlias

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

# A dense numpy array or a scipy CSR matrix of row vectors (both support @, [], .shape).
Matrix: TypeAlias = Any

# URLs (and, for themes, code blocks) say little about which problem a report is about; their
# tokens (hashes, variable names) would make unrelated reports look alike or alike ones differ.
_URL = re.compile(r"https?://\S+")
_FENCE = re.compile(r"```.*?```", re.S)
_SPACE = re.compile(r"\s+")

# Tokens of two or more word characters, allowing inner dots/dashes (`generate_content`, `v1.2`).
TOKEN_PATTERN = r"(?u)\b[a-zA-Z_][\w]*(?:[.-][\w]+)*\b"


def item_text(
    title: str, summary: str | None, body: str, max_chars: int = 1500, keep_code: bool = False
) -> str:
    """The text a problem is recognised by: title (twice, it names the problem), summary, body.

    Pass a body without its template (triage.boilerplate). Duplicates keep code: on Stack
    Overflow the snippet is often what two questions share, and dropping it lost recall.
    """
    body = body or ""
    if not keep_code:
        body = _FENCE.sub(" ", body)
    body = _SPACE.sub(" ", _URL.sub(" ", body)).strip()
    parts = [title, title, summary or "", body[:max_chars]]
    return "\n".join(p for p in parts if p)


@dataclass
class Tfidf:
    """A fitted TF-IDF space: the vectoriser and the row vectors of the texts it was fitted on."""

    vectorizer: TfidfVectorizer
    matrix: sparse.csr_matrix
    texts: list[str]  # lower-cased, to check that a bigram is a phrase someone wrote

    @cached_property
    def terms(self) -> np.ndarray:
        return self.vectorizer.get_feature_names_out()

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.csr_matrix(self.vectorizer.transform(list(texts)))


def fit_tfidf(
    texts: Sequence[str], max_features: int = 100_000, ngrams: tuple[int, int] = (1, 2)
) -> Tfidf:
    """Words (and bigrams), no English stop words; sublinear counts so long bodies do not win."""
    vectorizer = TfidfVectorizer(
        stop_words="english",
        ngram_range=ngrams,
        sublinear_tf=True,
        token_pattern=TOKEN_PATTERN,
        max_df=0.5 if len(texts) >= 10 else 1.0,  # words in half the items name no problem
        max_features=max_features,
        dtype=np.float32,
    )
    try:
        matrix = vectorizer.fit_transform(list(texts))
    except ValueError:  # nothing but stop words: an empty space where every similarity is 0
        vectorizer = TfidfVectorizer(token_pattern=r"(?u)\S+", dtype=np.float32)
        matrix = vectorizer.fit_transform([t or "_" for t in texts] or ["_"])
    return Tfidf(vectorizer, sparse.csr_matrix(matrix), [t.lower() for t in texts])


def centroid(rows: Matrix) -> np.ndarray:
    """The normalised mean of some row vectors (a theme's position in the space)."""
    mean = np.asarray(rows.mean(axis=0)).ravel().astype(np.float32)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def centroids(matrix: Matrix, groups: Sequence[Sequence[int]]) -> Matrix:
    """One normalised centroid per group of row indices (an empty group gives a zero row).

    Sparse in, sparse out: thousands of themes over a 100,000-term vocabulary stay small.
    """
    rows = [r for g in groups for r in g]
    owners = [g for g, members in enumerate(groups) for _ in members]
    weights = [1.0 / len(members) for members in groups for _ in members]
    pick = sparse.csr_matrix(
        (np.asarray(weights, dtype=np.float32), (owners, rows)),
        shape=(len(groups), matrix.shape[0]),
    )
    means = pick @ matrix
    out = normalize(means) if sparse.issparse(means) else normalize(np.asarray(means))
    return sparse.csr_matrix(out) if sparse.issparse(matrix) else np.asarray(out, dtype=np.float32)


def similarities(a: Matrix, b: Matrix) -> np.ndarray:
    """Dense cosine similarities of every row of `a` to every row of `b`."""
    product = a @ b.T
    if sparse.issparse(product):
        product = product.toarray()
    return np.asarray(product, dtype=np.float32)


def distinctive_terms(
    space: Tfidf, rows: Sequence[int], n: int = 8, background: np.ndarray | None = None
) -> list[str]:
    """Terms that weigh most in these rows compared with the whole space, bigrams first."""
    sub = space.matrix[list(rows)]
    inside = np.asarray(sub.mean(axis=0)).ravel()
    coverage = np.asarray((sub > 0).mean(axis=0)).ravel()  # share of rows using the term
    if background is None:
        background = np.asarray(space.matrix.mean(axis=0)).ravel()
    score = (inside - background) * (0.5 + coverage)
    order = np.argsort(-score)[: n * 8]
    # Sentence ends separate the sample texts, so no phrase is found across two of them.
    sample = "\n.\n".join(space.texts[r] for r in list(rows)[:50])
    terms = (str(space.terms[i]) for i in order if score[i] > 0)
    return _prefer_phrases((t for t in terms if said(t, sample)), n)


def said(term: str, text: str) -> bool:
    """Whether a bigram was written as a phrase, not pieced together across dropped stop words
    or a sentence end (`cut off since latest` gives the bigram `cut latest`)."""
    if " " not in term:
        return True
    return _phrase(term).search(text) is not None


@lru_cache(maxsize=4096)
def _phrase(term: str) -> re.Pattern[str]:
    gap = r"[^\w.!?]+"
    return re.compile(r"(?<![\w])" + gap.join(re.escape(w) for w in term.split()) + r"(?![\w])")


def _prefer_phrases(terms: Iterable[str], n: int) -> list[str]:
    """Keep a bigram over the single words it contains, so names read as phrases."""
    chosen: list[str] = []
    for term in terms:
        words = set(term.split())
        if any(words <= set(c.split()) for c in chosen):
            continue  # already said by a longer phrase
        chosen = [c for c in chosen if not set(c.split()) < words]
        chosen.append(term)
        if len(chosen) >= n:
            break
    return chosen


def pack(vector: np.ndarray) -> bytes:
    """A vector as float32 bytes for the embeddings table."""
    return np.asarray(vector, dtype="<f4").tobytes()
