"""Duplicates without a model: TF-IDF vectors for candidates, the similarity as the judgement."""

from __future__ import annotations

from collections.abc import Sequence

from triage.analysis import phrases, vectors
from triage.analysis.duplicates.model import Candidate, DupDoc, Judged, Link


def tfidf_space(docs: Sequence[DupDoc]) -> vectors.Tfidf:
    common = vectors.boilerplate_lines([d.body for d in docs])
    return vectors.fit_tfidf(
        [vectors.item_text(d.title, d.summary, d.body, boilerplate=common) for d in docs]
    )


def judge_offline(pairs: list[Candidate]) -> Judged:
    """Without a model the confidence is the similarity; the reason names the shared terms."""
    links = []
    for c in pairs:
        shared = phrases.readable(c.shared, [c.a.title, c.b.title])  # words, not debris
        terms = [f"\u201c{t}\u201d" for t in shared]
        said = ", ".join(terms[:-1]) + f" and {terms[-1]}" if len(terms) > 1 else "".join(terms)
        reason = f"both mention {said}" if said else "nearly the same wording"
        links.append(Link(c.a.key, c.b.key, c.similarity, round(c.similarity, 3), reason))
    return Judged(links=links)
