"""`triage eval`: how often each provider agrees with human labels, and what that costs.

Every provider classifies the same test items; the local provider first trains one model per
repository on the training items (pooled, as in production). Scores are per repository, as the
NLBSE benchmark requires, and averaged across repositories. Calibration picks, per label, the
lowest confidence at which the provider's precision reaches a target on the test items.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from sqlalchemy.orm import Session

from triage.analysis.evaluate.data import EvalRow
from triage.analysis.evaluate.shots import Shots, few_shot
from triage.config import Config
from triage.db.llm_calls import record_calls
from triage.db.schema import LabelThreshold
from triage.db.store import utcnow
from triage.errors import TriageError
from triage.providers import spec_for
from triage.providers.base import Classifier, ClassifyOutcome, ItemText, Taxonomy, end_run
from triage.providers.calls import CallRecord
from triage.providers.local.features import IssueFeatures
from triage.providers.local.model import ScopeModel, TrainingSet, train
from triage.providers.local.provider import FixedModels, LocalProvider, enough_labels, scope_key

NO_ANSWER = ""  # the prediction of an item a provider did not answer: always wrong
UNANSWERED = "(no answer)"  # NO_ANSWER as a confusion-matrix column
UNREACHABLE = 1.01  # stored threshold of a label whose precision target was never reached


@dataclass
class Prediction:
    key: str
    repo: str
    truth: str
    predicted: str
    confidence: float | None
    note: str | None = None


@dataclass
class LabelScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class RepoScores:
    repo: str
    n: int
    macro_f1: float
    labels: dict[str, LabelScores]
    confusion: list[list[int]]  # rows: truth, columns: prediction, both in `confusion_labels`
    label_order: list[str]  # the labels humans used: macro-F1 averages over these
    confusion_labels: list[str]  # those, then other labels predicted, then UNANSWERED


@dataclass
class Threshold:
    """The lowest confidence at which `label` reaches the precision target (None: never)."""

    label: str
    threshold: float | None
    precision: float  # at the threshold (best reachable when the target is not)
    coverage: float  # share of the label's predictions at or above the threshold
    recall: float  # share of the label's true items predicted with that confidence


@dataclass
class ProviderReport:
    provider: str
    model: str
    predictions: list[Prediction]
    per_repo: dict[str, RepoScores]
    mean_f1: float
    labels: dict[str, LabelScores]  # over all repositories together
    thresholds: dict[str, Threshold]
    calls: list[CallRecord] = field(default_factory=list)
    train_seconds: float = 0.0
    predict_seconds: float = 0.0
    notes: dict[str, int] = field(default_factory=dict)  # how answers were reached, counted
    stopped: str | None = None  # why the provider gave up (quota, outage): the rest unanswered
    shots: str | None = None  # `--shots` setting this run used (None: the config's)

    @property
    def label(self) -> str:
        """How the report is named in tables: the provider, and its shots setting if given."""
        return f"{self.provider} shots={self.shots}" if self.shots is not None else self.provider

    @property
    def usd_per_1000(self) -> float:
        """Estimated cost per 1,000 items classified."""
        n = len(self.predictions)
        return 1000 * sum(c.cost_usd for c in self.calls) / n if n else 0.0

    @property
    def unanswered(self) -> int:
        return sum(p.predicted == NO_ANSWER for p in self.predictions)


def eval_taxonomy(config: Config, labels: Sequence[str]) -> Taxonomy:
    """The data's labels as categories (described as in the config when names match)."""
    described = config.taxonomy.categories
    cats = {lb: described.get(lb, lb) for lb in sorted(set(labels))}
    return Taxonomy(
        categories=cats,
        labels=tuple(cats),
        priorities=tuple(config.taxonomy.priorities),
        label_map={c: (c,) for c in cats},
    )


def item_of(row: EvalRow) -> ItemText:
    source, sep, scope = row.repo.partition(":")
    if not sep or source not in ("github", "stackexchange"):
        source, scope = "github", row.repo  # NLBSE repositories are GitHub's
    return ItemText(key=row.key, title=row.title, body=row.body, source=source, scope=scope)


def label_scores(truth: Sequence[str], predicted: Sequence[str], order: list[str]) -> dict:
    p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=order, zero_division=0)
    return {
        lb: LabelScores(float(p[i]), float(r[i]), float(f[i]), int(s[i]))
        for i, lb in enumerate(order)
    }


def confusion_columns(order: list[str], preds: Sequence[Prediction]) -> list[str]:
    """`order`, then other labels predicted, then UNANSWERED if any: every item has a column."""
    shown = {p.predicted or UNANSWERED for p in preds}
    extra = sorted(shown - set(order) - {UNANSWERED})
    return order + extra + ([UNANSWERED] if UNANSWERED in shown else [])


def repo_scores(repo: str, preds: Sequence[Prediction]) -> RepoScores:
    """Macro-F1 over the labels humans used in this repository's test items."""
    order = sorted({p.truth for p in preds})
    truth = [p.truth for p in preds]
    got = [p.predicted for p in preds]
    macro = float(f1_score(truth, got, labels=order, average="macro", zero_division=0))
    # every item stands in its row: predictions of labels unused here and unanswered items too
    columns = confusion_columns(order, preds)
    shown = [p.predicted or UNANSWERED for p in preds]
    matrix = confusion_matrix(truth, shown, labels=columns).tolist()
    scores = label_scores(truth, got, order)
    return RepoScores(repo, len(preds), macro, scores, matrix, order, columns)


def choose_threshold(label: str, preds: Sequence[Prediction], target: float) -> Threshold:
    """Lowest confidence t such that predictions of `label` with confidence >= t are precise."""
    mine = sorted(
        ((p.confidence or 0.0, p.truth == label) for p in preds if p.predicted == label),
        key=lambda t: -t[0],
    )
    positives = sum(p.truth == label for p in preds)
    best: Threshold | None = None
    correct = 0
    fallback = Threshold(label, None, 0.0, 0.0, 0.0)
    for n, (conf, ok) in enumerate(mine, start=1):
        correct += ok
        if n < len(mine) and mine[n][0] == conf:
            continue  # a threshold takes every prediction with that confidence at once
        precision = correct / n
        if precision >= target:
            best = Threshold(label, conf, precision, n / len(mine), correct / max(positives, 1))
        elif precision > fallback.precision:
            fallback = Threshold(label, None, precision, 0.0, 0.0)
    return best if best is not None else fallback


def summarise(
    provider: str,
    model: str,
    preds: list[Prediction],
    target: float,
    calls: list[CallRecord],
    train_s: float,
    predict_s: float,
    stopped: str | None = None,
) -> ProviderReport:
    by_repo: dict[str, list[Prediction]] = defaultdict(list)
    for p in preds:
        by_repo[p.repo].append(p)
    per_repo = {repo: repo_scores(repo, ps) for repo, ps in sorted(by_repo.items())}
    order = sorted({p.truth for p in preds})
    notes: dict[str, int] = defaultdict(int)
    for p in preds:
        if p.note:
            notes[p.note.split(":", 1)[0]] += 1
    return ProviderReport(
        provider=provider,
        model=model,
        predictions=preds,
        per_repo=per_repo,
        mean_f1=float(np.mean([r.macro_f1 for r in per_repo.values()])) if per_repo else 0.0,
        labels=label_scores([p.truth for p in preds], [p.predicted for p in preds], order),
        thresholds={lb: choose_threshold(lb, preds, target) for lb in order},
        calls=calls,
        train_seconds=train_s,
        predict_seconds=predict_s,
        notes=dict(notes),
        stopped=stopped,
    )


def train_local(
    train_rows: Sequence[EvalRow], test_rows: Sequence[EvalRow], per_category: int
) -> FixedModels:
    """One model per test repository, trained as the provider trains it; features fitted once.

    As in production, a repository with fewer than `per_category` training items in two
    categories gets no model of its own: the pooled model answers for it, or with too few
    labels in all, the rules.
    """
    docs = [r.doc for r in train_rows]
    labels = [r.label for r in train_rows]
    features = IssueFeatures()
    matrix = features.fit_transform(docs, labels)
    train_scopes = [scope_key(item_of(r)) for r in train_rows]
    models: dict[str, ScopeModel] = {}
    for scope in sorted({scope_key(item_of(r)) for r in test_rows}):
        own = [s == scope for s in train_scopes]
        if not enough_labels(
            Counter(lb for lb, o in zip(labels, own, strict=True) if o), per_category
        ):
            continue  # too little of its own to learn from: the pooled model answers
        models[scope] = train(TrainingSet(docs, labels, own), features=features, matrix=matrix)
    pooled = None
    needed = len(models) < len({scope_key(item_of(r)) for r in test_rows})
    if needed and enough_labels(Counter(labels), per_category):
        pooled = train(TrainingSet(docs, labels), features=features, matrix=matrix)
    return FixedModels(models, pooled)  # neither: rules answer, as they would in production


def run_provider(
    provider: Classifier,
    train_rows: Sequence[EvalRow],
    test_rows: Sequence[EvalRow],
    taxonomy: Taxonomy,
    examples_per_label: int,
    shot_tokens: int = 0,
) -> tuple[list[Prediction], list[CallRecord], str | None]:
    """Classify the test items repository by repository, few-shot examples from training.

    Returns the predictions, the calls made and why the provider stopped early (or None).
    """
    preds: list[Prediction] = []
    calls: list[CallRecord] = []
    by_repo: dict[str, list[EvalRow]] = defaultdict(list)
    for row in test_rows:
        by_repo[row.repo].append(row)
    stopped: str | None = None
    for repo, rows in sorted(by_repo.items()):
        outcome = ClassifyOutcome()
        if not stopped:  # after a quota or outage stop, the rest stays unanswered
            examples = few_shot(train_rows, repo, examples_per_label, taxonomy, shot_tokens)
            outcome = provider.classify([item_of(r) for r in rows], taxonomy, examples)
            stopped = outcome.stop
        calls += outcome.calls
        got = {c.key: c for c in outcome.results}
        for r in rows:
            c = got.get(r.key)
            preds.append(
                Prediction(
                    r.key,
                    repo,
                    r.label,
                    c.category if c else NO_ANSWER,
                    c.confidence if c else None,
                    c.note if c else None,
                )
            )
    return preds, calls, stopped


def evaluate(
    config: Config,
    train_rows: Sequence[EvalRow],
    test_rows: Sequence[EvalRow],
    providers: Sequence[str],
    get_provider: Callable[[str], Classifier],
    target_precision: float = 0.9,
    shots: Sequence[Shots] = (),
) -> list[ProviderReport]:
    """Score each named provider on the test rows; one that trains learns the training rows.

    With `shots`, every provider that is prompted (does not train) runs once per setting.
    """
    trains = {n for n in providers if "train" in spec_for(n).capabilities}
    if trains and len({r.label for r in train_rows}) < 2:
        raise TriageError("the training items carry fewer than two labels: nothing to learn")
    if not test_rows:
        raise TriageError("no test items to evaluate on")
    taxonomy = eval_taxonomy(config, [r.label for r in [*train_rows, *test_rows]])
    reports = []
    for name in providers:
        started = time.perf_counter()
        train_s = 0.0
        if name in trains:
            provider: Classifier = LocalProvider(
                train_local(train_rows, test_rows, config.llm.local.min_labels_per_category),
                config.llm.local,
            )
            train_s = time.perf_counter() - started
        else:
            provider = get_provider(name)
        default = Shots(str(config.llm.few_shot_per_category), 0, config.llm.shot_tokens)
        settings = list(shots) if shots and name not in trains else [default]
        for setting in settings:
            began = time.perf_counter()
            per = setting.per_label if shots else config.llm.few_shot_per_category
            try:
                preds, calls, stopped = run_provider(
                    provider, train_rows, test_rows, taxonomy, per, setting.shot_tokens
                )
            finally:
                end_run(provider)
            report = summarise(
                name,
                provider.model,
                preds,
                target_precision,
                calls,
                train_s,
                time.perf_counter() - began,
                stopped,
            )
            report.shots = setting.text if shots and name not in trains else None
            reports.append(report)
    return reports


def save_thresholds(session: Session, report: ProviderReport, config: Config) -> list[str]:
    """Store each label's threshold for `triage label`; a target never reached blocks the label.

    Thresholds are chosen per category; each repository label the category maps to in
    `[labels] map` gets it. A label whose precision target is unreachable is stored above 1.0,
    so `triage label` never writes it for that provider.
    """
    saved = []
    now = utcnow()
    for cat, t in report.thresholds.items():
        value = t.threshold if t.threshold is not None else UNREACHABLE
        for label in config.labels.map.get(cat) or [cat]:
            row = session.get(LabelThreshold, (label, report.provider))
            if row is None:
                row = LabelThreshold(label=label, provider=report.provider)
                session.add(row)
            row.threshold = value
            row.precision = t.precision
            row.coverage = t.coverage
            row.created_at = now
            saved.append(label)
    return saved


def record_eval_calls(session: Session, reports: Sequence[ProviderReport]) -> int:
    """Log the paid providers' calls in `llm_calls` (purpose "eval"): they count in the budget."""
    now = utcnow()
    n = 0
    for report in reports:
        if not spec_for(report.provider).metered:
            continue  # free, and nothing to account for
        n += len(record_calls(session, report.calls, now, purpose="eval"))
    return n
