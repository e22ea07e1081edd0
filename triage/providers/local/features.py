"""Turning an issue's title and body into sparse features for the local classifier.

Measured on the NLBSE'24 issues (bench/local_quality.py): the joint title+body text with word and
character n-grams carries most of the signal; a separate title block (with "?" kept as a token)
and a block of whole Markdown lines (issue-template headings and their answers, such as
"Issue type" followed by "Feature Request") add about one point of macro-F1 each. Code, logs,
stack traces and URLs are replaced by marker tokens: their text is noise, their presence is not.
Issue templates (triage.boilerplate) are learned from the training items, and the shared lines,
field runs and `<details>` blocks that say nothing about the label are removed from the word and
character blocks. Removing all of them cost 0.5-0.8 points of mean macro-F1 (0.8125 -> 0.8069,
seed 0), as which template a report used is a category cue; so a shared line whose carriers lean
to one category (lift >= MAX_TEMPLATE_LIFT over its base rate) stays, and the whole lines stay
in the line block either way. At 1.3 the mean over 3 seeds is 0.8093 (0.8091 with templates
left in); at 1.8, which removes the GPU and version fields too, 0.8063 on seed 0 (0.8125).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer

from triage.boilerplate import Boilerplate, label_neutral, learn

MAX_BODY_CHARS = 4000  # the head of a long body says what it is about; logs fill the rest
MAX_TEMPLATE_LIFT = 1.3  # a shared line this much likelier in one category is a cue, kept

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


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_LOWER_WORD = re.compile(r"[a-z']+")


def openers(title: str, body: str) -> list[str]:
    """The first one to three words of every sentence: "how do i", "it would be", "when i"."""
    tokens = []
    for sentence in [title, *_SENTENCE.split(clean_body(body))]:
        words = _LOWER_WORD.findall(sentence.lower())[:3]
        tokens += ["S_" + "_".join(words[:n]) for n in range(1, len(words) + 1)]
    return tokens


def _cue(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I | re.M)


# Cues of how a report is written, counted in the title and in the body separately.
CUES = [
    _cue(r"\?"),
    _cue(r"^\s*(how|what|why|where|which|is|are|can|could|does|do|should)\b"),
    _cue(r"\b(is there|is it possible|any way)\b"),
    _cue(r"\b(add|support|allow|enable|provide|implement|introduce)\b"),
    _cue(r"\b(would|could) be (nice|great|useful|helpful)\b"),
    _cue(r"\b(feature|proposal|request|suggest)"),
    _cue(r"\b(error|exception|crash|fail|broken|wrong|bug|regression|segfault)"),
    _cue(r"\b(expected|actual|instead|reproduce)\b"),
    _cue(r"```"),
    _cue(r"https?://"),
    _cue(r"\b\d+\.\d+(\.\d+)?\b"),
    _cue(r"^\s*(at |File \"|Traceback)"),
    _cue(r"\b(i want|i would like|we need|it would)\b"),
    _cue(r"\b(i am trying|i'm trying|i tried|help)\b"),
    _cue(r"\b(docs?|documentation)\b"),
]


def cues(title: str, body: str) -> list[float]:
    """Scaled counts of each cue in the title and the body, and the body's length."""
    body = body[:MAX_BODY_CHARS]
    out: list[float] = []
    for cue in CUES:
        out.append(min(len(cue.findall(title)), 3) / 3)
        out.append(float(np.log1p(len(cue.findall(body)))) / 3)
    out.append(float(np.log1p(len(body))) / 10)
    return out


Doc = tuple[str, str]  # (title, body)


class IssueFeatures:
    """TF-IDF blocks over (title, body) pairs, weighted against each other; fit once, reuse."""

    # block -> weight relative to the joint-text blocks, chosen by cross-validation
    WEIGHTS: ClassVar[dict[str, float]] = {
        "word": 1.0,  # title + cleaned body, word 1-2-grams
        "char": 1.0,  # the same, character 1-4-grams within words
        "title": 0.7,  # title words, "?" kept
        "title_char": 0.3,
        "lines": 0.5,  # whole template lines and line pairs
        "openers": 0.3,  # sentence openers
        "cues": 0.5,  # hand-made counts (dense, not fitted)
    }

    def __init__(self) -> None:
        self.vectorizers: dict[str, TfidfVectorizer] = {}
        self.boilerplate = Boilerplate()

    def _inputs(self, docs: Sequence[Doc]) -> dict[str, list[Any]]:
        bodies = [clean_body(self.boilerplate.strip(body)) for _, body in docs]
        joint = [f"{title} . {body}" for (title, _), body in zip(docs, bodies, strict=True)]
        titles = [title for title, _ in docs]
        return {
            "word": joint,
            "char": joint,
            "title": titles,
            "title_char": titles,
            "lines": [line_tokens(body) for _, body in docs],
            "openers": [openers(title, body) for title, body in docs],
        }

    @staticmethod
    def _make(block: str, n_docs: int) -> TfidfVectorizer:
        # min_df drops one-off tokens (ids, hashes) once there are enough documents
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
        if block == "title_char":
            return TfidfVectorizer(
                analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=min_df
            )
        if block == "openers":
            return TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=min_df)
        return TfidfVectorizer(
            analyzer=_identity, sublinear_tf=True, binary=True, min_df=3 if n_docs >= 30 else 1
        )

    @classmethod
    def _cues(cls, docs: Sequence[Doc]) -> csr_matrix:
        return csr_matrix(np.array([cues(t, b) for t, b in docs])) * cls.WEIGHTS["cues"]

    def fit_transform(self, docs: Sequence[Doc], labels: Sequence[str] | None = None) -> csr_matrix:
        """Fit on `docs`; with their `labels`, the label-neutral template text is left out."""
        if labels is not None:
            bodies = [body for _, body in docs]
            self.boilerplate = label_neutral(learn(bodies), bodies, labels, MAX_TEMPLATE_LIFT)
        inputs = self._inputs(docs)
        blocks = []
        for block, data in inputs.items():
            vec = self._make(block, len(docs))
            try:
                blocks.append(vec.fit_transform(data) * self.WEIGHTS[block])
            except ValueError:  # empty vocabulary (e.g. no body has two lines): leave it out
                continue
            self.vectorizers[block] = vec
        blocks.append(self._cues(docs))
        return csr_matrix(hstack(blocks).tocsr())

    def transform(self, docs: Sequence[Doc]) -> csr_matrix:
        inputs = self._inputs(docs)
        blocks = [
            vec.transform(inputs[block]) * self.WEIGHTS[block]
            for block, vec in self.vectorizers.items()
        ]
        blocks.append(self._cues(docs))
        return csr_matrix(hstack(blocks).tocsr())

    @property
    def n_features(self) -> int:
        return int(sum(len(v.vocabulary_) for v in self.vectorizers.values())) + 2 * len(CUES) + 1


def row_scale(matrix: csr_matrix, factors: np.ndarray) -> csr_matrix:
    """Each row multiplied by its factor (0 hides a row's features in a block)."""
    from scipy.sparse import diags

    return csr_matrix(diags(factors.astype(np.float64)) @ matrix)
