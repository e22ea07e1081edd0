"""The local provider: classify with models trained on the repository's own labelled history.

No network and no key. Each source (a repository, a Stack Exchange site) gets its own model as
soon as humans have labelled enough of its items; until then a pooled model over every source
answers, and with no labelled items at all, template and keyword rules do. Results say which of
the three answered (`Classification.note`). Answers go through the same validation as every
other provider's, so only taxonomy categories and allowlisted labels survive.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from triage.config import LocalConfig
from triage.providers.base import ClassifyOutcome, Example, ItemText, Taxonomy, validate_answers
from triage.providers.calls import CallRecord
from triage.providers.local import rules
from triage.providers.local.model import MODEL_ID, VERSION, ScopeModel
from triage.providers.local.summarize import summarize

NAME = "local"
PROMPT_VERSION = f"local-{VERSION}"


@dataclass(frozen=True)
class Choice:
    """The model that answers for a scope (None: rules), and how it was chosen."""

    model: ScopeModel | None
    note: str | None = None  # None when the scope's own model answers


class ModelSource(Protocol):
    def choose(self, scope: str) -> Choice: ...

    def forget(self) -> None:
        """Drop what was read or trained, so the next run sees the labels as they are then."""


class FixedModels:
    """Models trained elsewhere (e.g. by `triage eval` on a CSV), looked up by scope."""

    def __init__(self, models: dict[str, ScopeModel], pooled: ScopeModel | None = None) -> None:
        self.models = models
        self.pooled = pooled

    def choose(self, scope: str) -> Choice:
        if scope in self.models:
            return Choice(self.models[scope])
        if self.pooled is not None:
            return Choice(self.pooled, f"pooled model: no model trained for {scope}")
        return Choice(None, f"rules: no model trained for {scope}")

    def forget(self) -> None:
        """Nothing to drop: these models were trained on fixed rows."""


def enough_labels(counts: Mapping[str, int], per_category: int) -> bool:
    """A source trains its own model with `per_category` labelled items in two categories."""
    return sum(n >= per_category for n in counts.values()) >= 2


def scope_key(item: ItemText) -> str:
    """`github:owner/repo` or `stackexchange:site`: the unit a model is trained for."""
    return f"{item.source}:{item.scope}"


class LocalProvider:
    """Classifier over local models; `store.build` gives it the models kept in the database."""

    name = NAME
    model = MODEL_ID
    prompt_version = PROMPT_VERSION
    metered = False  # no tokens, no cost: the token budgets do not apply

    def __init__(self, models: ModelSource, cfg: LocalConfig | None = None) -> None:
        self.models = models
        self.cfg = cfg or LocalConfig()

    def close(self) -> None:
        """End the run: the next one reads the labelled history afresh."""
        self.models.forget()

    def classify(
        self, items: Sequence[ItemText], taxonomy: Taxonomy, examples: Sequence[Example]
    ) -> ClassifyOutcome:
        """Answer every item; `examples` are not needed: the models learnt from all of them."""
        out = ClassifyOutcome()
        groups: dict[str, list[ItemText]] = defaultdict(list)
        for item in items:
            groups[scope_key(item)].append(item)
        for scope, group in groups.items():
            out.extend(self._classify_scope(scope, group, taxonomy))
        return out

    def _classify_scope(
        self, scope: str, items: list[ItemText], taxonomy: Taxonomy
    ) -> ClassifyOutcome:
        started = time.perf_counter()
        choice = self.models.choose(scope)
        guesses = self._guess(choice, items, taxonomy)
        raw = [
            self._answer(f"i{n}", item, category, confidence, taxonomy)
            for n, (item, (category, confidence)) in enumerate(zip(items, guesses, strict=True))
        ]
        id_to_key = {f"i{n}": item.key for n, item in enumerate(items)}
        checked = validate_answers(raw, id_to_key, taxonomy)
        record = CallRecord(
            self.name,
            self.model,
            self.prompt_version,
            items=len(items),
            latency_ms=int((time.perf_counter() - started) * 1000),
        )
        note = choice.note
        for result in checked.results:
            result.call = record
            result.note = note
        failed = {
            id_to_key[i]: "the local model answered a category the taxonomy no longer has;"
            " it is retrained when [labels] map changes"
            for i in checked.missing
        }
        return ClassifyOutcome(results=checked.results, failed=failed, calls=[record])

    def _guess(
        self, choice: Choice, items: list[ItemText], taxonomy: Taxonomy
    ) -> list[tuple[str, float]]:
        if choice.model is None:
            found = [rules.classify(it.title, it.body, taxonomy.categories) for it in items]
            return [(g.category, g.confidence) for g in found]
        proba = choice.model.predict_proba([(it.title, it.body) for it in items])
        classes = choice.model.classes
        return [(classes[int(row.argmax())], round(float(row.max()), 4)) for row in proba]

    def _answer(
        self, ident: str, item: ItemText, category: str, confidence: float, taxonomy: Taxonomy
    ) -> dict[str, Any]:
        mapped = taxonomy.label_map.get(category, ())
        default = (
            taxonomy.priorities[(len(taxonomy.priorities) - 1) // 2] if taxonomy.priorities else ""
        )
        return {
            "id": ident,
            "category": category,
            "labels": list(mapped[:1]),  # the first label of the category is its canonical one
            "priority": rules.priority(item.title, item.body, taxonomy.priorities, default),
            "summary": summarize(item.title, item.body, self.cfg.summary_sentences),
            "confidence": confidence,
        }
