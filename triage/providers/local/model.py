"""The local classifier: a linear SVM over issue features, with calibrated confidences.

Training pools every labelled item of every source and lets the target source's items also
switch on a private copy of their features ("frustratingly easy" domain adaptation, Daumé 2007):
shared weights learn what bug/feature/question look like anywhere, the private copy learns the
target repository's own habits (templates, vocabulary). On NLBSE'24 this beats a model trained
on the repository alone by about two points of macro-F1 (bench/local_quality.py --alone).

Confidences come from temperature scaling of the SVM's scores, fitted on out-of-fold scores of
the target source's items. Scaling keeps the arg-max, so calibration never changes a prediction
(CalibratedClassifierCV refits on sub-samples and cost about one point of F1 here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.sparse import csr_matrix, hstack
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from triage.providers.local.features import Doc, IssueFeatures, row_scale

ALGORITHM = "tfidf-svm"
VERSION = "2"  # bump when features or training change: stored models are then retrained
MODEL_ID = f"{ALGORITHM}-{VERSION}"
C = 0.25  # SVM regularisation, chosen by cross-validation
CALIBRATION_FOLDS = 3
DEFAULT_TEMPERATURE = 3.0  # used when too few items to fit one: mild, not over-confident


@dataclass
class TrainingSet:
    """Labelled documents; `own` marks the target source's items (all True for a pooled model)."""

    docs: list[Doc]
    labels: list[str]
    own: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.own:
            self.own = [True] * len(self.docs)
        if not len(self.docs) == len(self.labels) == len(self.own):
            raise ValueError("docs, labels and own must have the same length")

    @property
    def own_size(self) -> int:
        return sum(self.own)


@dataclass
class ScopeModel:
    """A trained model: features, SVM, temperature, and what it was trained on."""

    features: IssueFeatures
    svm: LinearSVC
    classes: list[str]
    temperature: float
    train_size: int
    own_size: int
    oof_accuracy: float | None = None  # out-of-fold accuracy on the target source's items

    def scores(self, docs: Sequence[Doc]) -> np.ndarray:
        x = self.features.transform(docs)
        return _decision(self.svm, _augment(x, np.ones(x.shape[0])))

    def predict_proba(self, docs: Sequence[Doc]) -> np.ndarray:
        """Rows of calibrated probabilities over `classes`."""
        if not docs:
            return np.zeros((0, len(self.classes)))
        return softmax(self.scores(docs) * self.temperature)

    def predict(self, docs: Sequence[Doc]) -> list[str]:
        proba = self.predict_proba(docs)
        return [self.classes[i] for i in proba.argmax(axis=1)]


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return out


def _augment(x: csr_matrix, own: np.ndarray) -> csr_matrix:
    """[shared | private]: the private copy is zero for items of other sources."""
    return csr_matrix(hstack([x, row_scale(x, own)]).tocsr())


def _decision(svm: LinearSVC, x: csr_matrix) -> np.ndarray:
    scores = np.asarray(svm.decision_function(x), dtype=np.float64)
    if scores.ndim == 1:  # two classes: one margin for the second class
        scores = np.column_stack([-scores, scores])
    return scores


def _fit_svm(x: csr_matrix, y: np.ndarray) -> LinearSVC:
    return LinearSVC(C=C).fit(x, y)


def fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """The softmax temperature that minimises log-loss of `scores` against class indices."""

    def nll(t: float) -> float:
        proba = softmax(scores * t)
        return float(-np.mean(np.log(proba[np.arange(len(truth)), truth] + 1e-12)))

    result = minimize_scalar(nll, bounds=(0.05, 50.0), method="bounded")
    return float(result.x)


def _calibrate(
    x: csr_matrix, y: np.ndarray, own: np.ndarray, classes: list[str], seed: int
) -> tuple[float, float | None]:
    """Temperature and accuracy from out-of-fold scores of the target source's items."""
    own_idx = np.flatnonzero(own)
    other_idx = np.flatnonzero(~own)
    own_y = y[own_idx]
    counts = [int((own_y == c).sum()) for c in classes]
    if min(counts) < CALIBRATION_FOLDS:
        return DEFAULT_TEMPERATURE, None
    folds = StratifiedKFold(CALIBRATION_FOLDS, shuffle=True, random_state=seed)
    scores = np.zeros((len(own_idx), len(classes)))
    for train_pos, test_pos in folds.split(own_idx, own_y):
        train = np.concatenate([own_idx[train_pos], other_idx])
        svm = _fit_svm(_augment(x[train], own[train].astype(float)), y[train])
        test = own_idx[test_pos]
        scores[test_pos] = _decision(svm, _augment(x[test], np.ones(len(test))))
    truth = np.array([classes.index(label) for label in own_y])
    accuracy = float((scores.argmax(axis=1) == truth).mean())
    return fit_temperature(scores, truth), accuracy


def train(
    data: TrainingSet,
    *,
    features: IssueFeatures | None = None,
    matrix: csr_matrix | None = None,
    calibrate: bool = True,
    seed: int = 0,
) -> ScopeModel:
    """Fit a model; pass `features`/`matrix` already fitted on `data.docs` to share that work."""
    classes = sorted(set(data.labels))
    if len(classes) < 2:
        raise ValueError("training needs labelled items of at least two categories")
    if features is None or matrix is None:
        features = IssueFeatures()
        matrix = features.fit_transform(data.docs, data.labels)
    y = np.array(data.labels)
    own = np.array(data.own, dtype=bool)
    svm = _fit_svm(_augment(matrix, own.astype(float)), y)
    temperature, accuracy = DEFAULT_TEMPERATURE, None
    if calibrate:
        temperature, accuracy = _calibrate(matrix, y, own, classes, seed)
    return ScopeModel(
        features=features,
        svm=svm,
        classes=[str(c) for c in svm.classes_],
        temperature=temperature,
        train_size=len(data.docs),
        own_size=int(own.sum()),
        oof_accuracy=accuracy,
    )
