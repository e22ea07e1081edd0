"""Offline themes: TF-IDF vectors, nearest theme centroid, threshold clustering of the rest.

Thresholds are cosine similarities in a TF-IDF space of words (title counted
twice, summary, the body without code and URLs). Measured on reports of the same problem
written by different people, members sit at 0.25-0.5 from their theme's centroid and
unrelated reports below 0.15.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.preprocessing import normalize
from sqlalchemy.orm import Session, sessionmaker

from triage import boilerplate
from triage.analysis import item_vectors, phrases, vectors, words
from triage.analysis.embeddings import Vectoriser, embed_all
from triage.analysis.item_refs import Ref
from triage.analysis.item_vectors import Templates
from triage.analysis.themes.model import ExistingTheme, NewTheme, ThemeDoc, ThemePlan

ASSIGN_SIMILARITY = 0.2  # an item joins a theme (existing or just found) this close to it
CLUSTER_SIMILARITY = 0.3  # two new items are about the same problem at this similarity
MERGE_SIMILARITY = 0.4  # two themes (or new clusters) whose centroids are this close are one
MEMBERS_PER_THEME = 20  # newest members that place a theme (its centroid) in each run
# Average linkage: two groups are one problem when their reports are this alike on average.
# In word space (unigrams) on NLBSE'24 this (with the STANDOUT pass) puts 33-54 % of a
# repository's issues in themes of three or more, none over a tenth (bench/themes_nlbse.py);
# bigram space reached half of that.
# Lower thresholds cover more but join distinct problems that share filler wording.
LINKAGE_SIMILARITY = 0.13
# Average linkage needs the full similarity matrix; above this many new items the star
# clustering below (blocked, linear memory) takes over.
LINKAGE_MAX_ITEMS = 3000
# A loose item below ASSIGN_SIMILARITY still joins its nearest theme when it stands out among
# all loose items by that theme's own spread (STANDOUT sd above their mean similarity to it) and
# is not unrelated (JOIN_FLOOR). Scale-free: a small corpus's inflated cosines do not let an
# unrelated report in. On NLBSE'24 this lifts coverage from 24-49 % to 33-54 % per repository,
# the largest theme still 3-6 % (bench/themes_nlbse.py); 3 sd joined in loosely related reports.
JOIN_FLOOR = 0.12
STANDOUT = 4.5
CENTRE_MIN_ITEMS = 10  # fewer embeddings than this say too little about their mean
SIMILARITY_BLOCK = 2048  # rows compared with every theme at a time (bounded memory)


def texts(docs: Sequence[ThemeDoc]) -> list[str]:
    """Every doc's text without its source's template (headings, system-info blocks)."""
    bodies = boilerplate.strip_by_scope([d.key for d in docs], [d.body for d in docs])
    return [
        vectors.item_text(d.title, d.summary, body) for d, body in zip(docs, bodies, strict=True)
    ]


@dataclass
class Tally:
    """Embeddings made and reused for offline themes ([themes] embedding_provider)."""

    embedded: int = 0
    reused: int = 0
    calls: int = 0


class OfflineThemer:
    """Plans themes from stored word counts (and embeddings): of the items a run plans only
    their text is read, to name new themes; existing themes are placed by their members'
    stored vectors."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        min_cluster_size: int,
        embedder: Vectoriser | None = None,
    ) -> None:
        self.sessions = sessions
        self.min_cluster_size = min_cluster_size
        self.embedder = embedder
        self.templates = Templates(sessions)
        self.tally = Tally()

    def __call__(self, docs: list[ThemeDoc], themes: list[ExistingTheme]) -> ThemePlan:
        refs: list[Ref] = [*docs, *(m for t in themes for m in t.members)]
        model = item_vectors.WORDS_THEMES
        item_vectors.ensure(
            self.sessions, refs, model, item_vectors.word_maker(model), self.templates
        )
        counts, _ = item_vectors.load_words(self.sessions, [r.key for r in refs], model)
        semantic = None
        if self.embedder is not None:
            semantic = embed_all(self.sessions, refs, self.embedder, self.tally, self.templates)
        written = [
            vectors.item_text(d.title, d.summary, self.templates.strip(d.key, d.body)) for d in docs
        ]
        return plan_local(docs, themes, self.min_cluster_size, semantic, counts, written)


def best_of(x: vectors.Matrix, cents: vectors.Matrix) -> tuple[np.ndarray, np.ndarray]:
    """Each row's most similar centroid and that similarity, a block of rows at a time."""
    best = np.zeros(x.shape[0], dtype=np.int64)
    sim = np.zeros(x.shape[0], dtype=np.float32)
    for start in range(0, x.shape[0], SIMILARITY_BLOCK):
        sims = vectors.similarities(x[start : start + SIMILARITY_BLOCK], cents)
        best[start : start + len(sims)] = sims.argmax(axis=1)
        sim[start : start + len(sims)] = sims.max(axis=1)
    return best, sim


def linkage_clusters(matrix: vectors.Matrix, threshold: float) -> list[list[int]]:
    """Average-linkage clusters whose members are, on average, at least `threshold` alike."""
    n = matrix.shape[0]
    if n < 2:
        return []
    distance = 1.0 - vectors.similarities(matrix, matrix).astype(np.float64)
    np.clip(distance, 0.0, 2.0, out=distance)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    del distance
    labels = fcluster(tree, 1.0 - threshold, criterion="distance")
    groups: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(int(label), []).append(row)
    return [rows for rows in groups.values() if len(rows) > 1]


def cluster(matrix: vectors.Matrix) -> list[list[int]]:
    """Groups of rows that report one problem (rows in no group are left out)."""
    if matrix.shape[0] <= LINKAGE_MAX_ITEMS:
        return linkage_clusters(matrix, LINKAGE_SIMILARITY)
    return leader_clusters(matrix, CLUSTER_SIMILARITY)


def leader_clusters(matrix: vectors.Matrix, threshold: float) -> list[list[int]]:
    """Star clusters: the row with most neighbours above `threshold` takes its free neighbours.

    Unlike single linkage this cannot chain unrelated reports together through a sequence of
    near neighbours, and it needs one pass over a blocked similarity matrix.
    """
    n = matrix.shape[0]
    if n == 0:
        return []
    adjacency: list[np.ndarray] = []
    block = max(64, (1 << 23) // max(n, 1))
    for start in range(0, n, block):
        sims = vectors.similarities(matrix[start : start + block], matrix)
        for r in range(sims.shape[0]):
            sims[r, start + r] = 0.0
            adjacency.append(np.flatnonzero(sims[r] >= threshold))
    degree = np.array([len(a) for a in adjacency])
    owner = np.full(n, -1)
    clusters: list[list[int]] = []
    for i in np.argsort(-degree, kind="stable"):
        if owner[i] >= 0 or degree[i] == 0:
            continue
        members = [int(i)] + [int(j) for j in adjacency[i] if owner[j] < 0]
        owner[members] = len(clusters)
        clusters.append(members)
    return clusters


def refine(
    x: vectors.Matrix, clusters: list[list[int]], free: list[int], min_size: int
) -> list[list[int]]:
    """Join clusters of one problem that the star pass split, then let loose items join them."""
    clusters = [list(c) for c in clusters]
    if len(clusters) > 1:
        cents = vectors.centroids(x, clusters)
        sims = vectors.similarities(cents, cents)
        root = list(range(len(clusters)))

        def find(i: int) -> int:
            while root[i] != i:
                i = root[i]
            return i

        pairs = np.argwhere(np.triu(sims, 1) >= MERGE_SIMILARITY)
        for a, b in sorted(pairs.tolist(), key=lambda p: -sims[p[0], p[1]]):
            ra, rb = find(a), find(b)
            if ra != rb:
                root[max(ra, rb)] = min(ra, rb)
        joined: dict[int, list[int]] = {}
        for c, rows in enumerate(clusters):
            joined.setdefault(find(c), []).extend(rows)
        clusters = list(joined.values())
    taken = {r for c in clusters for r in c}
    loose = [r for r in free if r not in taken]
    if clusters and loose:
        sims = vectors.similarities(x[loose], vectors.centroids(x, clusters))
        best = sims.argmax(axis=1)
        # How an item stands out among everything outside a theme, in that theme's own spread
        # of outsider similarities: scale-free, unlike a cosine that depends on the corpus.
        spread = sims.std(axis=0) + 1e-6
        standout = (sims - sims.mean(axis=0)) / spread
        for i, r in enumerate(loose):
            b = best[i]
            near = sims[i, b]
            if near >= ASSIGN_SIMILARITY or (near >= JOIN_FLOOR and standout[i, b] >= STANDOUT):
                clusters[b].append(r)
                taken.add(r)
    if min_size <= 1:  # every item is a theme of its own if it must be
        clusters += [[r] for r in free if r not in taken]
    return clusters


def _distinct(terms: list[str], n: int) -> list[str]:
    """Up to n terms sharing no word, so a title does not say `file upload, uploaded file`."""
    picked: list[str] = []
    seen: set[str] = set()
    for term in terms:
        words = set(term.split())
        if words & seen:
            continue
        picked.append(term)
        seen |= words
        if len(picked) == n:
            break
    return picked


def _name(space: vectors.Tfidf, rows: Sequence[int], docs: Sequence[ThemeDoc]) -> NewTheme:
    """A theme's name from its most distinctive terms; its description quotes a central report."""
    terms = vectors.distinctive_terms(space, rows, n=16)
    terms = phrases.readable(terms, [docs[r].title for r in rows])[:8]  # words, not debris
    centre = vectors.centroid(space.matrix[list(rows)])
    closeness = np.asarray(space.matrix[list(rows)] @ centre).ravel()
    central = list(rows)[int(np.argmax(closeness))]
    title = ", ".join(_distinct(terms, 3)) or docs[central].title[:80]
    sources = sorted({docs[r].source for r in rows})
    description = (
        f"Reports about {', '.join(terms[:6]) or 'one problem'}"
        f" ({' and '.join(sources)}), e.g. \u201c{docs[central].title[:200]}\u201d"
    )
    return NewTheme(ref="", title=title, description=description, terms=terms)


def with_embeddings(words: vectors.Matrix, semantic: np.ndarray | None) -> vectors.Matrix:
    """Rows whose dot product is the mean of their word and embedding cosine similarities.

    Embedding models put unrelated texts at a cosine well above 0; the mean vector is taken
    off first so that, as in word space, unrelated reports sit near 0 and the thresholds hold.
    """
    if semantic is None or semantic.size == 0:
        return words
    vecs = np.asarray(semantic, dtype=np.float32)
    if vecs.shape[0] >= CENTRE_MIN_ITEMS:
        vecs = vecs - vecs.mean(axis=0, keepdims=True)
    vecs = normalize(vecs)
    half = np.float32(np.sqrt(0.5))
    return sparse.hstack([words * half, sparse.csr_matrix(vecs * half)], format="csr")


def plan_local(
    docs: list[ThemeDoc],
    themes: list[ExistingTheme],
    min_cluster_size: int,
    semantic: np.ndarray | None = None,
    counts: sparse.csr_matrix | None = None,
    written: list[str] | None = None,
) -> ThemePlan:
    """Join items to the nearest existing theme, cluster the rest, merge themes that converged.

    `counts`: word counts (triage.analysis.words) of `docs` followed by the themes' members,
    in that order; counted from the docs' text when there are no members. `semantic`: optional
    embeddings in the same order; items are then placed by the mean of word and embedding
    similarity (names stay words). `written`: the docs' text without templates (for names).
    """
    members = [(t, m) for t in themes for m in t.members]
    if written is None:
        written = texts(docs)
    if counts is None:
        if members:
            raise ValueError("the word counts of existing themes' members are needed")
        counts = words.counts(written)
    # Words place items (bigrams spread one problem's wording too thin); phrases name themes.
    phrases = vectors.fit_tfidf(written)
    placed = with_embeddings(words.weigh(counts), semantic)
    n = len(docs)
    x = placed[:n]
    groups: list[list[int]] = [[] for _ in themes]
    position = {t.id: g for g, t in enumerate(themes)}
    for offset, (theme, _) in enumerate(members):
        groups[position[theme.id]].append(n + offset)
    plan = ThemePlan()
    free = list(range(n))
    if themes:
        best, near = best_of(x, vectors.centroids(placed, groups))
        free = []
        for i in range(n):
            if near[i] >= ASSIGN_SIMILARITY:
                plan.assign[docs[i].key] = themes[best[i]].id
                groups[best[i]].append(i)
            else:
                free.append(i)
    found = [[free[r] for r in c] for c in cluster(x[free])]
    clusters = [c for c in refine(x, found, free, min_cluster_size) if len(c) >= min_cluster_size]
    for rows in clusters:
        new = _name(phrases, rows, docs)
        new.ref = f"new-{len(plan.new) + 1}"
        plan.new.append(new)
        for r in rows:
            plan.assign[docs[r].key] = new.ref
    plan.merges = _merges(
        placed,
        themes,
        groups,
        changed={int(t) for t in set(plan.assign.values()) if isinstance(t, int)},
    )
    return plan


def _merges(
    placed: vectors.Matrix,
    themes: list[ExistingTheme],
    groups: list[list[int]],
    changed: set[int],
) -> list[tuple[int, int]]:
    """Themes that gained items and now sit next to another theme: younger into older."""
    if len(themes) < 2 or not changed:
        return []
    cents = vectors.centroids(placed, groups)
    idx = [g for g, t in enumerate(themes) if t.id in changed and groups[g]]
    merges: list[tuple[int, int]] = []
    gone: set[int] = set()
    for r, g in enumerate(idx):
        if r % SIMILARITY_BLOCK == 0:
            sims = vectors.similarities(cents[idx[r : r + SIMILARITY_BLOCK]], cents)
        row = sims[r % SIMILARITY_BLOCK]
        for h in np.argsort(-row):
            if h == g or not groups[h]:
                continue
            if row[h] < MERGE_SIMILARITY:
                break
            a, b = themes[g].id, themes[h].id
            young, old = max(a, b), min(a, b)
            if young not in gone and old not in gone:
                merges.append((young, old))
                gone.add(young)
            break
    return merges
