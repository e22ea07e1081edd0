"""Nearest neighbours of some rows among all rows, in memory that does not grow with n squared.

Vectors are L2-normalised rows (TF-IDF words, sparse; or embeddings, dense), so a dot product
is a cosine. Few queries against the collection are scored exactly, block by block. A search
of a whole large collection (the first run over 200,000 items) would be n squared, so it
narrows first and scores exactly after:
- words: each query keeps its HEAVY_WORDS heaviest words; the items sharing them, scored on
  those words alone, give CANDIDATES that are scored exactly on all words;
- embeddings: rows are grouped around sampled centres (k-means); the rows of a group are
  compared exactly with the rows of the PROBE groups nearest to theirs.
Both find the true nearest neighbour for most rows (bench/scale.py measures how often) and the
pairs they find carry exact similarities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize

from triage.analysis.vectors import Matrix, similarities

# Queries x rows scored exactly at most; above this the search narrows first. 1,000 new items
# against 200,000 (2e8) are still exact, a whole 20,000-item collection (4e8) too.
EXACT_PAIRS = 5 * 10**8
BLOCK_CELLS = 1 << 23  # similarities held at once in an exact block (32 MiB of float32)
HEAVY_WORDS = 20
CANDIDATES = 50
QUERY_BLOCK = 256
PROBE = 8  # embedding groups searched for a group's rows (its own and the nearest others)
SEED = 20240501

Progress = Callable[[int], None]


@dataclass
class Found:
    """Pairs as flat arrays: `rows[i]` has neighbour `cols[i]` at similarity `sims[i]`."""

    rows: np.ndarray
    cols: np.ndarray
    sims: np.ndarray

    @classmethod
    def empty(cls) -> Found:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))

    @classmethod
    def join(cls, parts: Sequence[Found]) -> Found:
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.rows for p in parts]),
            np.concatenate([p.cols for p in parts]),
            np.concatenate([p.sims for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.rows)


def search(
    matrix: Matrix,
    k: int,
    floor: float,
    rows: Sequence[int] | np.ndarray | None = None,
    progress: Progress | None = None,
    exact_pairs: int = EXACT_PAIRS,
) -> Found:
    """Each query row's (default: every row's) `k` nearest other rows at `floor` or above;
    narrowed first when there are more than `exact_pairs` queries x rows."""
    n = matrix.shape[0]
    queries = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    if n < 2 or k <= 0 or len(queries) == 0:
        return Found.empty()
    if len(queries) * n <= exact_pairs:
        return _exact(matrix, queries, k, floor, progress)
    if sparse.issparse(matrix):
        return _by_heavy_words(sparse.csr_matrix(matrix), queries, k, floor, progress)
    return _by_groups(np.asarray(matrix), queries, k, floor, progress)


def _top(query_rows: np.ndarray, cand: np.ndarray, sims: np.ndarray, k: int, floor: float) -> Found:
    """The k best of each query's candidate row (one row of `cand`/`sims` per query)."""
    take = min(k, sims.shape[1])
    if take <= 0:
        return Found.empty()
    top = np.argpartition(-sims, take - 1, axis=1)[:, :take]
    picked = np.take_along_axis(sims, top, axis=1)
    cols = np.take_along_axis(cand, top, axis=1)
    rows = np.repeat(query_rows, take).reshape(len(query_rows), take)
    keep = (picked >= floor) & (cols != rows) & (cols >= 0)
    return Found(rows[keep], cols[keep], picked[keep].astype(np.float32))


def _exact(
    matrix: Matrix, queries: np.ndarray, k: int, floor: float, progress: Progress | None
) -> Found:
    n = matrix.shape[0]
    block = int(max(1, min(1024, BLOCK_CELLS // n)))
    other = matrix.T.tocsr().T if sparse.issparse(matrix) else matrix  # one transpose, reused
    parts = []
    everyone = np.arange(n)
    for start in range(0, len(queries), block):
        chunk = queries[start : start + block]
        sims = similarities(matrix[chunk], other)
        sims[np.arange(len(chunk)), chunk] = -2.0  # an item is not its own neighbour
        cand = np.broadcast_to(everyone, sims.shape)
        parts.append(_top(chunk, cand, sims, k + 1, floor))
        if progress:
            progress(len(chunk))
    return _trim(Found.join(parts), k)


def _trim(found: Found, k: int) -> Found:
    """At most k per query row, best first within a row."""
    if len(found) == 0:
        return found
    order = np.lexsort((-found.sims, found.rows))
    rows, cols, sims = found.rows[order], found.cols[order], found.sims[order]
    starts = np.r_[0, np.flatnonzero(np.diff(rows)) + 1]
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    keep = rank < k
    return Found(rows[keep], cols[keep], sims[keep])


def _by_heavy_words(
    matrix: sparse.csr_matrix, queries: np.ndarray, k: int, floor: float, progress: Progress | None
) -> Found:
    postings = matrix.T.tocsr()  # word -> the rows using it, built once
    parts = []
    for start in range(0, len(queries), QUERY_BLOCK):
        chunk = queries[start : start + QUERY_BLOCK]
        q = matrix[chunk]
        heavy = _heaviest(q, HEAVY_WORDS)
        partial = sparse.csr_matrix(heavy @ postings)
        cand = np.full((len(chunk), CANDIDATES), -1, dtype=np.int64)
        for r in range(len(chunk)):
            lo, hi = partial.indptr[r], partial.indptr[r + 1]
            cols, vals = partial.indices[lo:hi], partial.data[lo:hi]
            if len(cols) > CANDIDATES:
                best = np.argpartition(-vals, CANDIDATES - 1)[:CANDIDATES]
                cols = cols[best]
            cand[r, : len(cols)] = cols
        safe = np.where(cand >= 0, cand, 0)
        repeated = q[np.repeat(np.arange(len(chunk)), CANDIDATES)]
        exact = np.asarray(repeated.multiply(matrix[safe.ravel()]).sum(axis=1), dtype=np.float32)
        sims = np.where(cand >= 0, exact.reshape(cand.shape), -2.0).astype(np.float32)
        sims[cand == chunk[:, None]] = -2.0
        parts.append(_top(chunk, cand, sims, k, floor))
        if progress:
            progress(len(chunk))
    return _trim(Found.join(parts), k)


def _heaviest(q: sparse.csr_matrix, n: int) -> sparse.csr_matrix:
    """Each row with only its n largest entries."""
    out = q.copy()
    for r in range(out.shape[0]):
        lo, hi = out.indptr[r], out.indptr[r + 1]
        if hi - lo > n:
            vals = out.data[lo:hi]
            cut = np.partition(vals, hi - lo - n)[hi - lo - n]
            vals[vals < cut] = 0.0
    out.eliminate_zeros()
    return out


def _by_groups(
    matrix: np.ndarray, queries: np.ndarray, k: int, floor: float, progress: Progress | None
) -> Found:
    n = matrix.shape[0]
    centres = _centres(matrix, max(2, int(4 * np.sqrt(n))))
    group = _nearest_centre(matrix, centres)
    near = np.argsort(-similarities(centres, centres), axis=1)[:, :PROBE]
    members = [np.flatnonzero(group == g) for g in range(len(centres))]
    wanted = np.zeros(n, dtype=bool)
    wanted[queries] = True
    parts = []
    for g in range(len(centres)):
        mine = members[g][wanted[members[g]]]
        if len(mine) == 0:
            continue
        cand = np.concatenate([members[h] for h in near[g]])
        for start in range(0, len(mine), max(1, BLOCK_CELLS // max(len(cand), 1))):
            chunk = mine[start : start + BLOCK_CELLS // max(len(cand), 1)]
            sims = similarities(matrix[chunk], matrix[cand])
            grid = np.broadcast_to(cand, sims.shape)
            sims = np.where(grid == chunk[:, None], -2.0, sims).astype(np.float32)
            parts.append(_top(chunk, grid, sims, k, floor))
        if progress:
            progress(len(mine))
    return _trim(Found.join(parts), k)


def _centres(matrix: np.ndarray, count: int, rounds: int = 4) -> np.ndarray:
    """Spherical k-means centres from a sample of the rows (seeded: runs are repeatable)."""
    rng = np.random.default_rng(SEED)
    n = matrix.shape[0]
    sample = matrix[np.sort(rng.choice(n, size=min(n, count * 8), replace=False))]
    centres = sample[rng.choice(len(sample), size=min(count, len(sample)), replace=False)].copy()
    for _ in range(rounds):
        owner = _nearest_centre(sample, centres)
        sums = np.zeros_like(centres)
        np.add.at(sums, owner, sample)
        empty = ~sums.any(axis=1)
        sums[empty] = centres[empty]
        centres = np.asarray(normalize(sums), dtype=np.float32)
    return centres


def _nearest_centre(matrix: np.ndarray, centres: np.ndarray) -> np.ndarray:
    out = np.empty(matrix.shape[0], dtype=np.int64)
    block = max(1, BLOCK_CELLS // max(len(centres), 1))
    for start in range(0, matrix.shape[0], block):
        out[start : start + block] = similarities(matrix[start : start + block], centres).argmax(
            axis=1
        )
    return out
