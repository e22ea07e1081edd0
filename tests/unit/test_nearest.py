"""Nearest neighbours: the narrowed search of a large collection finds what the exact one does."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import normalize

from tests.fakes.corpus import batch, synthetic_problems
from triage.analysis import nearest, words
from triage.analysis.vectors import item_text


def firsts(found: nearest.Found) -> dict[int, int]:
    best: dict[int, tuple[int, float]] = {}
    for r, c, s in zip(found.rows.tolist(), found.cols.tolist(), found.sims.tolist(), strict=True):
        if r not in best or s > best[r][1]:
            best[r] = (c, s)
    return {r: c for r, (c, _) in best.items()}


def agreement(narrowed: nearest.Found, exact: nearest.Found) -> float:
    a, b = firsts(narrowed), firsts(exact)
    return sum(a.get(r) == c for r, c in b.items()) / len(b)


def test_word_vectors_narrowed_by_heavy_words_find_the_nearest_report() -> None:
    items = batch(synthetic_problems(60), 10, np.datetime64("2025-01-01").astype(object), seed=3)
    texts = [item_text(i.title, "", i.body, keep_code=True) for i in items]
    matrix = words.weigh(words.counts(texts))
    exact = nearest.search(matrix, 5, 0.15)
    narrowed = nearest.search(matrix, 5, 0.15, exact_pairs=0)
    assert agreement(narrowed, exact) >= 0.95
    # Similarities are exact whichever way a pair was found.
    pairs = dict(
        zip(
            zip(exact.rows.tolist(), exact.cols.tolist(), strict=True),
            exact.sims.tolist(),
            strict=False,
        )
    )
    for r, c, s in zip(
        narrowed.rows.tolist(), narrowed.cols.tolist(), narrowed.sims.tolist(), strict=True
    ):
        if (r, c) in pairs:
            assert abs(pairs[(r, c)] - s) < 1e-4


def test_embeddings_narrowed_by_groups_find_the_nearest_row() -> None:
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(40, 32))
    matrix = normalize(centres[rng.integers(0, 40, 3000)] + 0.6 * rng.normal(size=(3000, 32)))
    matrix = np.asarray(matrix, dtype=np.float32)
    exact = nearest.search(matrix, 3, 0.0)
    narrowed = nearest.search(matrix, 3, 0.0, exact_pairs=0)
    assert agreement(narrowed, exact) >= 0.9
    assert not set(zip(narrowed.rows.tolist(), narrowed.cols.tolist(), strict=True)) & {
        (r, r) for r in range(3000)
    }


def test_only_the_rows_asked_for_look_for_neighbours() -> None:
    matrix = normalize(np.eye(6, dtype=np.float32) + 0.1)
    found = nearest.search(matrix, 2, 0.0, rows=[1, 4])
    assert set(found.rows.tolist()) == {1, 4}
    assert all(len([r for r in found.rows.tolist() if r == q]) == 2 for q in (1, 4))
