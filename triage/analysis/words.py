"""Word vectors that need no fitted vocabulary, so an item's can be stored once per text.

A TF-IDF space fitted on every run must read every item's text again; at 200,000 items that is
most of a run. Here an item's word counts are hashed into a fixed space of 2**20 columns
(sublinear, stop words out: what TfidfVectorizer would count) and stored per content hash with
the embeddings. A run reads the stored counts, takes the document frequencies of the items it
has, and weighs them: the same TF-IDF cosine as a fitted space, give or take a hash collision.
The words behind a column are found again only for the few pairs or themes that are explained.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

from triage.analysis.vectors import TOKEN_PATTERN

COLUMNS = 1 << 20  # 1M columns: two words of a 200,000-item collection rarely share one
MAX_DF = 0.5  # words in half the items name no problem (as the fitted spaces do)
MIN_ITEMS_FOR_MAX_DF = 10


@lru_cache(maxsize=1)
def _hasher() -> HashingVectorizer:
    return HashingVectorizer(
        n_features=COLUMNS,
        alternate_sign=False,
        norm=None,
        stop_words="english",
        token_pattern=TOKEN_PATTERN,
        dtype=np.float32,
    )


def counts(texts: Sequence[str]) -> sparse.csr_matrix:
    """Sublinear word counts (1 + ln n) of each text, one row each."""
    matrix = sparse.csr_matrix(_hasher().transform(list(texts)), dtype=np.float32)
    matrix.sort_indices()
    np.log(matrix.data, out=matrix.data)
    matrix.data += 1.0
    return matrix


def pack_rows(matrix: sparse.csr_matrix) -> list[bytes]:
    """Each row of counts as bytes: its column numbers, then their values."""
    cols = np.asarray(matrix.indices, dtype="<i4")
    vals = np.asarray(matrix.data, dtype="<f4")
    ptr = matrix.indptr
    return [
        cols[ptr[r] : ptr[r + 1]].tobytes() + vals[ptr[r] : ptr[r + 1]].tobytes()
        for r in range(matrix.shape[0])
    ]


def unpack(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    half = len(blob) // 2
    return np.frombuffer(blob[:half], dtype="<i4"), np.frombuffer(blob[half:], dtype="<f4")


def stack(rows: Sequence[tuple[np.ndarray, np.ndarray]]) -> sparse.csr_matrix:
    """Unpacked rows as one CSR matrix of counts."""
    lengths = np.fromiter((len(c) for c, _ in rows), dtype=np.int64, count=len(rows))
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    if rows:
        cols = np.concatenate([c for c, _ in rows]).astype(np.int32, copy=False)
        vals = np.concatenate([v for _, v in rows]).astype(np.float32, copy=False)
    else:
        cols, vals = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
    return sparse.csr_matrix((vals, cols, indptr), shape=(len(rows), COLUMNS))


def idf(tf: sparse.csr_matrix) -> np.ndarray:
    """Smoothed inverse document frequency over these rows (scikit-learn's formula); a word in
    more than MAX_DF of them weighs nothing."""
    n = tf.shape[0]
    df = np.bincount(tf.indices, minlength=COLUMNS).astype(np.float32)
    weights = np.log((1.0 + n) / (1.0 + df), dtype=np.float32) + np.float32(1.0)
    if n >= MIN_ITEMS_FOR_MAX_DF:
        weights[df > MAX_DF * n] = 0.0
    return weights


def weigh(tf: sparse.csr_matrix, weights: np.ndarray | None = None) -> sparse.csr_matrix:
    """TF-IDF rows, L2-normalised: a dot product is a cosine similarity."""
    w = idf(tf) if weights is None else weights
    out = tf.copy()
    out.data *= w[out.indices]
    out.eliminate_zeros()
    return sparse.csr_matrix(normalize(out), dtype=np.float32)


def words_by_column(texts: Sequence[str]) -> list[dict[int, str]]:
    """For each text, the word behind each column it uses (for saying what two reports share).

    Every distinct word of all the texts is hashed once."""
    analyse = _hasher().build_analyzer()
    said = [set(analyse(text)) for text in texts]
    tokens = sorted(set().union(*said)) if said else []
    if not tokens:
        return [{} for _ in texts]
    hashed = sparse.csr_matrix(_hasher().transform(tokens))  # each token alone: its column
    column: dict[str, int] = {}
    for row, token in enumerate(tokens):
        cols = hashed.indices[hashed.indptr[row] : hashed.indptr[row + 1]]
        if len(cols):
            column[token] = int(cols[0])
    return [{column[t]: t for t in sorted(words) if t in column} for words in said]
