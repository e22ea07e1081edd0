"""Turning an issue's title and body into sparse features for the local classifier.

Measured on the NLBSE'24 issues (bench/local_quality.py): the joint title+body text with word and
character n-grams carries most of the signal; a separate title block (with "?" kept as a token)
and a block of whole Markdown lines (issue-template headings and their answers, such as
"Issue type" followed by "Feature Request") add about one point of macro-F1 each. Code, logs,
stack traces and URLs are replaced by marker tokens: their text is noise, their presence is not.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer

MAX_BODY_CHARS = 4000  # the head of a long body says what it is about; logs fill the rest

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_FENCE = re.compile(r"```.*?(?:```|$)", re.S)
_URL = re.compile(r"https?://\S+")
_TRACE = re.compile(
    r"^\s*(?:at .+\(.*\)|at .+:\d+|File \".+\", line \d+.*|Traceback .*|#\d+ 0x[0-9a-f]+.*"
    r"|\S+\.(?:py|js|ts|tsx|cpp|cc|c|h|hpp|java|go|rs|rb|cs):\d+.*)$",
    re.M,
)
_QUOTE = re.compile(r"^\s*>.*$", re.M)
_EMPTY_ANSWER = re.compile(r"_No response_|\bN/?A\b", re.I)
_SPACE = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^a-z0-9 ]+")
_TITLE_TOKENS = r"(?u)\b\w+\b|\?"


def clean_body(body: str, limit: int = MAX_BODY_CHARS) -> str:
    """The body as prose: template comments, quotes and empty answers out; code as markers."""
    text = _COMMENT.sub(" ", body)
    text = _FENCE.sub(" codeblock ", text)
    text = _URL.sub(" urltoken ", text)
    text = _TRACE.sub(" traceline ", text)
    text = _QUOTE.sub(" ", text)
    text = _EMPTY_ANSWER.sub(" ", text)
    return _SPACE.sub(" ", text).strip()[:limit]


def _norm_line(line: str) -> str:
    return _SPACE.sub(" ", _NON_WORD.sub(" ", line.lower())).strip()


def line_tokens(body: str) -> list[str]:
    """Whole lines and consecutive pairs of lines, as single tokens (template headings+answers)."""
    text = _FENCE.sub("\n", _COMMENT.sub(" ", body))
    lines = [n for n in (_norm_line(raw) for raw in text.splitlines()) if n]
    tokens = ["L_" + line.replace(" ", "_")[:60] for line in lines]
    pairs = itertools.pairwise(lines)
    tokens += ["P_" + a.replace(" ", "_")[:40] + "__" + b.replace(" ", "_")[:40] for a, b in pairs]
    return tokens


def _identity(tokens: list[str]) -> list[str]:
    return tokens


Doc = tuple[str, str]  # (title, body)


class IssueFeatures:
    """TF-IDF blocks over (title, body) pairs, weighted against each other; fit once, reuse."""

    # (block, weight): weights relative to the joint-text blocks, chosen by cross-validation
    WEIGHTS: ClassVar[dict[str, float]] = {"word": 1.0, "char": 1.0, "title": 0.7, "lines": 0.5}

    def __init__(self) -> None:
        self.vectorizers: dict[str, TfidfVectorizer] = {}

    @staticmethod
    def _inputs(docs: Sequence[Doc]) -> dict[str, list[Any]]:
        bodies = [clean_body(body) for _, body in docs]
        joint = [f"{title} . {body}" for (title, _), body in zip(docs, bodies, strict=True)]
        return {
            "word": joint,
            "char": joint,
            "title": [title for title, _ in docs],
            "lines": [line_tokens(body) for _, body in docs],
        }

    @staticmethod
    def _make(block: str, n_docs: int) -> TfidfVectorizer:
        # min_df=2 drops one-off tokens (ids, hashes) once there are enough documents
        min_df = 2 if n_docs >= 20 else 1
        if block == "word":
            return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df)
        if block == "char":
            return TfidfVectorizer(
                analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, min_df=min_df
            )
        if block == "title":
            return TfidfVectorizer(
                ngram_range=(1, 2), sublinear_tf=True, token_pattern=_TITLE_TOKENS
            )
        return TfidfVectorizer(
            analyzer=_identity, sublinear_tf=True, binary=True, min_df=3 if n_docs >= 30 else 1
        )

    def fit_transform(self, docs: Sequence[Doc]) -> csr_matrix:
        inputs = self._inputs(docs)
        blocks = []
        for block, weight in self.WEIGHTS.items():
            vec = self._make(block, len(docs))
            try:
                blocks.append(vec.fit_transform(inputs[block]) * weight)
            except ValueError:  # empty vocabulary (e.g. no body has two lines): leave it out
                continue
            self.vectorizers[block] = vec
        return csr_matrix(hstack(blocks).tocsr())

    def transform(self, docs: Sequence[Doc]) -> csr_matrix:
        inputs = self._inputs(docs)
        blocks = [
            vec.transform(inputs[block]) * self.WEIGHTS[block]
            for block, vec in self.vectorizers.items()
        ]
        return csr_matrix(hstack(blocks).tocsr())

    @property
    def n_features(self) -> int:
        return int(sum(len(v.vocabulary_) for v in self.vectorizers.values()))


def row_scale(matrix: csr_matrix, factors: np.ndarray) -> csr_matrix:
    """Each row multiplied by its factor (0 hides a row's features in a block)."""
    from scipy.sparse import diags

    return csr_matrix(diags(factors.astype(np.float64)) @ matrix)
