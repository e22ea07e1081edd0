"""Local models in the database: which one a scope gets, training, storing and retraining.

A scope with at least `[llm.local] min_labels_per_category` human-labelled items in two or more
categories gets its own model (trained on every labelled item, its own marked as such); other
scopes share the pooled model `*`; with too little anywhere, rules answer. A stored model is
reused until the labelled set has grown by `[llm.local] retrain_growth`, the category set
changed, or the algorithm version changed. Blobs are pickles this program wrote itself into its
own database; nothing else is ever unpickled.
"""

from __future__ import annotations

import logging
import pickle
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import delete, select

from triage.db.engine import transaction
from triage.db.schema import Item, LocalModel
from triage.db.store import utcnow
from triage.providers.base import DoctorDeps, ProviderDeps
from triage.providers.local.labels import category_of, label_to_category
from triage.providers.local.model import VERSION, ScopeModel, TrainingSet, train
from triage.providers.local.provider import NAME, Choice, LocalProvider, enough_labels

POOLED = "*"
# Past this many labelled items, the newest are kept: training time stays in seconds.
MAX_TRAIN_ITEMS = 20_000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Labelled:
    key: str
    scope: str  # source:scope
    category: str


class DatabaseModels:
    """Chooses, trains and caches the model for each scope, lazily, once per provider."""

    def __init__(self, ctx: ProviderDeps) -> None:
        self.ctx = ctx
        self.cfg = ctx.config.llm.local
        self._index: list[Labelled] | None = None
        self._choices: dict[str, Choice] = {}
        self._trained: dict[str, ScopeModel] = {}
        self.trained_now: list[str] = []  # scopes (re)trained by this instance, for reports

    def forget(self) -> None:
        """Drop the labelled index and chosen models: the next run decides afresh."""
        self._index = None
        self._choices.clear()
        self._trained.clear()

    def labelled(self) -> list[Labelled]:
        """Every human-labelled item (one category), newest first; text is loaded only to train."""
        if self._index is None:
            mapping = label_to_category(self.ctx.config)
            stmt = (
                select(Item.key, Item.source, Item.scope, Item.labels, Item.tags)
                .where(Item.is_pull_request.is_(False))
                .order_by(Item.created_at.desc(), Item.key)
            )
            index = []
            with self.ctx.sessions() as s:
                for key, source, scope, labels, tags in s.execute(stmt):
                    cat = category_of([*(labels or []), *(tags or [])], mapping)
                    if cat is not None:
                        index.append(Labelled(key, f"{source}:{scope}", cat))
            self._index = index
        return self._index

    def enough(self, counts: Counter[str]) -> bool:
        return enough_labels(counts, self.cfg.min_labels_per_category)

    def choose(self, scope: str) -> Choice:
        if scope not in self._choices:
            self._choices[scope] = self._decide(scope)
        return self._choices[scope]

    def _decide(self, scope: str) -> Choice:
        index = self.labelled()
        own = Counter(x.category for x in index if x.scope == scope)
        if self.enough(own):
            return Choice(self._model(scope))
        mine = ", ".join(f"{n} {c}" for c, n in sorted(own.items())) or "none"
        need = self.cfg.min_labels_per_category
        if self.enough(Counter(x.category for x in index)):
            note = (
                f"pooled model: {scope} has too few labelled items ({mine};"
                f" {need} per category in two categories train its own)"
            )
            return Choice(self._model(POOLED), note)
        return Choice(None, f"rules: too few labelled items to train a model ({len(index)} in all)")

    def _model(self, scope: str) -> ScopeModel:
        if scope in self._trained:
            return self._trained[scope]
        index = self.labelled()
        categories = sorted({x.category for x in index})
        stored = self._stored(scope)
        if stored is not None and not self._stale(stored, len(index), categories):
            try:
                model: ScopeModel = pickle.loads(stored.blob)
                self._trained[scope] = model
                return model
            except Exception as exc:  # written by another version of the code: retrain
                log.warning("stored local model for %s unreadable (%s); retraining", scope, exc)
        model = self._train(scope, index)
        self._save(scope, model, categories, len(index))
        self._trained[scope] = model
        self.trained_now.append(scope)
        return model

    def _stored(self, scope: str) -> LocalModel | None:
        with self.ctx.sessions() as s:
            return s.scalars(
                select(LocalModel)
                .where(LocalModel.scope == scope, LocalModel.version == VERSION)
                .order_by(LocalModel.id.desc())
                .limit(1)
            ).first()

    def _stale(self, stored: LocalModel, size: int, categories: list[str]) -> bool:
        """Retrain when the labelled set grew by the configured share, or categories changed."""
        if sorted(stored.categories or []) != categories:
            return True
        grown = size - stored.train_size
        return grown > 0 and grown >= self.cfg.retrain_growth * stored.train_size

    def _train(self, scope: str, index: list[Labelled]) -> ScopeModel:
        own = [x for x in index if x.scope == scope]
        others = [x for x in index if x.scope != scope][: max(0, MAX_TRAIN_ITEMS - len(own))]
        chosen = (own + others) if scope != POOLED else index[:MAX_TRAIN_ITEMS]
        texts = self._texts([x.key for x in chosen])
        data = TrainingSet(
            docs=[texts[x.key] for x in chosen],
            labels=[x.category for x in chosen],
            own=[scope == POOLED or x.scope == scope for x in chosen],
        )
        log.info("training local model for %s on %d items", scope, len(chosen))
        return train(data)

    def _texts(self, keys: list[str]) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        with self.ctx.sessions() as s:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                for key, title, body in s.execute(
                    select(Item.key, Item.title, Item.body).where(Item.key.in_(chunk))
                ):
                    out[key] = (title, body or "")
        return out

    def _save(self, scope: str, model: ScopeModel, categories: list[str], size: int) -> None:
        """Store the new model and drop older ones for the scope (latest wins on a race).

        `train_size` records the labelled set the model was trained from (before any cap), the
        figure that later growth is measured against.
        """
        blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        with transaction(self.ctx.sessions) as s:
            row = LocalModel(
                scope=scope,
                version=VERSION,
                train_size=size,
                categories=categories,
                blob=blob,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            s.execute(delete(LocalModel).where(LocalModel.scope == scope, LocalModel.id < row.id))


def build(deps: ProviderDeps) -> LocalProvider:
    """The provider for `--provider local`: models trained and stored in the database."""
    return LocalProvider(DatabaseModels(deps), deps.config.llm.local)


def doctor_check(ctx: DoctorDeps) -> str:
    """`triage doctor`: what the local provider would answer with, per source (trains nothing)."""
    if ctx.config.llm.provider != NAME:
        return f"skipped ([llm] provider is {ctx.config.llm.provider})"
    ctx.require_schema()  # a clear "run triage db upgrade" instead of a failed query
    models = DatabaseModels(ctx)
    index = models.labelled()
    scopes = sorted({x.scope for x in index})
    own = [s for s in scopes if models.enough(Counter(x.category for x in index if x.scope == s))]
    with ctx.sessions() as s:
        stored = s.scalars(select(LocalModel.scope).where(LocalModel.version == VERSION)).all()
    if not index:
        return "no labelled items yet: rules answer until humans label some ([labels] map)"
    pooled = (
        "pooled model for the rest"
        if models.enough(Counter(x.category for x in index))
        else "rules for the rest"
    )
    return (
        f"{len(index)} labelled items in {len(scopes)} source{'s' if len(scopes) != 1 else ''};"
        " own models for"
        f" {len(own)} ({', '.join(own) or 'none'}), {pooled}; {len(stored)} stored"
    )
