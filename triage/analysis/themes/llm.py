"""Themes with a model: one long prompt over the window's items and the existing themes.

The model assigns every item to an existing theme id (`T<id>`) or to a new theme it proposes
(`N<k>`), and may say that two existing themes are one. Answers are validated: an id the prompt
did not show is rejected, never created. The prompt is split into several calls only when the
items do not fit [llm] max_prompt_tokens beside the theme list. Split calls run in waves of up
to [llm] concurrency: each wave is shown the themes founded by earlier waves, and new themes that
two calls of one wave propose for the same problem are founded once (waves.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from triage.analysis import vectors
from triage.analysis.themes.model import ExistingTheme, NewTheme, ThemeDoc, ThemePlan
from triage.analysis.themes.prompt import (
    SYSTEM,
    Shown,
    ThemesAnswer,
    render_item,
    render_theme,
    user_prompt,
)
from triage.analysis.themes.waves import run_wave, twin_of
from triage.config import Config
from triage.db.llm_calls import Budget
from triage.logs import get_logger
from triage.providers import concurrency_for
from triage.providers.base import JsonModel
from triage.providers.calls import CallFailed, CallRecord, Reply
from triage.providers.packing import estimate_tokens, pack
from triage.providers.repair import decode

log = get_logger("triage.themes")

PROMPT_VERSION = "themes-1"
# Each answer line costs about this many output tokens; calls stay well inside output limits.
ANSWER_TOKENS = 16
MAX_OUTPUT_TOKENS = 32_000
# Garbled answers, and not one usable, after which the model is taken to be unfit: halving a
# chunk to find an item that trips it up takes at most 7 in a row; halving for a model that
# never answers in JSON would take 127 calls a chunk.
GIVE_UP_AFTER = 10
# The theme list may take at most this share of a prompt; past it, each call shows the themes
# most alike to its items.
THEMES_SHARE = 0.5
MAX_DEPTH = 6  # halvings of a chunk whose answer was cut short or garbled


class OverBudget(Exception):
    """The next call would not fit the token budget: the run stops with the rest pending."""


# call(system, user, schema, items) -> Reply; raises CallFailed.
JsonCall = Callable[[str, str, type, int], Reply]


@dataclass
class Task:
    """One call of a wave: its items, the themes and ids its prompt shows, its reserved tokens."""

    chunk: list[ThemeDoc]
    shown: list[Shown]
    ids: list[str]
    user: str
    estimate: int


@dataclass
class RunState:
    """The state of one themes run across its calls."""

    plan: ThemePlan = field(default_factory=ThemePlan)
    shown: list[Shown] = field(default_factory=list)
    proposed: dict[str, NewTheme] = field(default_factory=dict)
    wave: list[NewTheme] = field(default_factory=list)  # founded by this wave's other calls
    garbled: int = 0  # answers that were not the JSON asked for
    usable: int = 0


class LLMThemer:
    """Plans themes with a JSON-answering model; see the module docstring."""

    def __init__(
        self,
        call: JsonCall,
        max_prompt_tokens: int,
        min_cluster_size: int,
        budget: Budget | None = None,
        concurrency: int = 1,
    ) -> None:
        self.call = call
        self.max_prompt_tokens = max_prompt_tokens
        self.min_cluster_size = min_cluster_size
        self.budget = budget
        self.concurrency = max(1, concurrency)

    def __call__(self, docs: list[ThemeDoc], themes: list[ExistingTheme]) -> ThemePlan:
        run = RunState()
        run.shown = [
            Shown(f"T{t.id}", t.id, t.title, t.description, f"{t.title} {t.description}")
            for t in themes
        ]
        remaining = list(docs)
        while remaining:
            # With no theme yet, one call founds the first ones for the rest to join.
            wave, over_budget = self.next_wave(run, remaining, 1 if not run.shown else None)
            remaining = remaining[sum(len(t.chunk) for t in wave) :]
            stop = self._settle(run, wave)
            if stop is None and over_budget:
                stop = OverBudget()
            if stop is not None:
                done = set(run.plan.assign)
                run.plan.failed.update(d.key for d in remaining if d.key not in done)
                if isinstance(stop, OverBudget) and self.budget is not None:
                    run.plan.exhausted = self.budget.exhausted(len(run.plan.failed))
                else:
                    log.warning("themes call failed", reason=str(stop))
                break
        self._drop_small(run)
        return run.plan

    # -- waves ---------------------------------------------------------------------------
    def next_wave(
        self, run: RunState, docs: list[ThemeDoc], size: int | None
    ) -> tuple[list[Task], bool]:
        """Up to `size` (default [llm] concurrency) calls, each reserved in the budget.

        Returns the calls and whether the budget refused the next one.
        """
        wave: list[Task] = []
        rest = docs
        while rest and len(wave) < (size or self.concurrency):
            chunk = self.next_chunk(rest, run.shown)
            task = self._task(run, chunk)
            if self.budget is not None:
                if not self.budget.allows(task.estimate):
                    return wave, True
                self.budget.add(task.estimate)  # counted as spent while in flight
            wave.append(task)
            rest = rest[len(chunk) :]
        return wave, False

    def _task(self, run: RunState, chunk: list[ThemeDoc]) -> Task:
        shown = self.themes_for(run.shown, chunk)
        ids = [f"i{n}" for n in range(1, len(chunk) + 1)]
        user = user_prompt(shown, list(zip(ids, chunk, strict=True)))
        estimate = estimate_tokens(SYSTEM) + estimate_tokens(user) + ANSWER_TOKENS * len(chunk)
        return Task(chunk, shown, ids, user, estimate)

    def _settle(self, run: RunState, wave: list[Task]) -> Exception | None:
        """Send the wave's calls at once, then take their answers in order, in this thread."""
        stop: Exception | None = None
        run.wave = []
        for task, got in run_wave(wave, self._send, self.concurrency):
            try:
                if isinstance(got, CallFailed):
                    if got.record is not None:
                        run.plan.calls.append(got.record)
                        self._spent(got.record, task.estimate)
                    raise got
                self._spent(got.record, task.estimate)
                # After a stop, an answer already paid for is used, but not asked again in halves.
                self._answered(run, task, got, depth=0 if stop is None else MAX_DEPTH)
            except (CallFailed, OverBudget) as exc:
                stop = stop or exc
                done = set(run.plan.assign)
                run.plan.failed.update(d.key for d in task.chunk if d.key not in done)
        run.wave = []
        return stop

    def _send(self, task: Task) -> Reply | CallFailed:
        try:
            return self.call(SYSTEM, task.user, ThemesAnswer, len(task.chunk))
        except CallFailed as exc:
            return exc

    def _spent(self, record: CallRecord, reserved: int) -> None:
        if self.budget is not None:
            used = record.input_tokens + record.output_tokens
            self.budget.add(used - reserved, record.cost_usd)

    # -- splitting -----------------------------------------------------------------------
    def item_cost(self, doc: ThemeDoc) -> int:
        return estimate_tokens(render_item("i0000", doc)) + 1

    def next_chunk(self, docs: list[ThemeDoc], shown: list[Shown]) -> list[ThemeDoc]:
        """As many of `docs` as fit the budget beside the themes shown now (all, if they fit).

        Chosen call by call, because themes proposed by one call are shown to the next.
        """
        base = estimate_tokens(SYSTEM) + 50
        listed = sum(estimate_tokens(render_theme(t)) + 1 for t in shown)
        room = (
            self.max_prompt_tokens - base - min(listed, int(self.max_prompt_tokens * THEMES_SHARE))
        )
        max_items = max(1, MAX_OUTPUT_TOKENS // ANSWER_TOKENS)
        return pack(docs, self.item_cost, max(room, 1), max_items)[0]

    def themes_for(self, shown: list[Shown], chunk: list[ThemeDoc]) -> list[Shown]:
        """All themes if they fit their share of the prompt, else the ones most like the chunk."""
        room = int(self.max_prompt_tokens * THEMES_SHARE)
        costs = [estimate_tokens(render_theme(t)) + 1 for t in shown]
        if sum(costs) <= room:
            return shown
        space = vectors.fit_tfidf(
            [t.text or t.title for t in shown] + [f"{d.title} {d.summary}" for d in chunk]
        )
        sims = vectors.similarities(space.matrix[: len(shown)], space.matrix[len(shown) :])
        order = sims.max(axis=1).argsort()[::-1]
        picked, used = [], 0
        for g in order:
            if used + costs[g] > room:
                continue
            picked.append(shown[g])
            used += costs[g]
        return picked

    # -- one call ------------------------------------------------------------------------
    def _ask(self, run: RunState, chunk: list[ThemeDoc], depth: int) -> None:
        """One call for part of a chunk whose answer was unusable, sent from this thread."""
        task = self._task(run, chunk)
        if self.budget is not None and not self.budget.allows(task.estimate):
            raise OverBudget()
        try:
            reply = self.call(SYSTEM, task.user, ThemesAnswer, len(chunk))
        except CallFailed as exc:
            if exc.record is not None:
                run.plan.calls.append(exc.record)
                self._spent(exc.record, 0)
            raise
        self._spent(reply.record, 0)
        self._answered(run, task, reply, depth)

    def _answered(self, run: RunState, task: Task, reply: Reply, depth: int) -> None:
        chunk, ids, shown = task.chunk, task.ids, task.shown
        run.plan.calls.append(reply.record)
        answer = self._parse(reply)
        if answer is None and not reply.blocked and reply.finish != "MAX_TOKENS":
            run.garbled += 1
            if not run.usable and run.garbled >= GIVE_UP_AFTER:
                raise CallFailed(
                    f"the model answered {run.garbled} times without the JSON asked for;"
                    " stopping (check [llm] provider and model)"
                )
        if answer is None:
            if len(chunk) > 1 and depth < MAX_DEPTH:  # cut short or garbled: ask again in halves
                mid = len(chunk) // 2
                self._ask(run, chunk[:mid], depth + 1)
                self._ask(run, chunk[mid:], depth + 1)
            elif reply.blocked:  # the model will not read this item: it waits for a person
                log.warning("themes answer blocked", item=chunk[0].key, reason=reply.blocked)
            else:
                run.plan.failed.update(d.key for d in chunk)
            return
        run.usable += 1
        self._apply(run, answer, dict(zip(ids, chunk, strict=True)), shown)

    @staticmethod
    def _parse(reply: Reply) -> ThemesAnswer | None:
        if reply.blocked or reply.finish == "MAX_TOKENS":
            return None
        try:
            raw: Any = decode(reply.text)
            return ThemesAnswer.model_validate(raw)
        except (ValueError, ValidationError):
            return None

    def _apply(
        self, run: RunState, answer: ThemesAnswer, items: dict[str, ThemeDoc], shown: list[Shown]
    ) -> None:
        known = {t.label: t for t in shown}
        fresh: dict[str, NewTheme] = {}
        twins: set[str] = set()  # labels for a theme another call of this wave founded
        for proposal in answer.new_themes:
            label = proposal.id.strip()
            if label in known or label in fresh or not proposal.title.strip():
                continue
            title, description = proposal.title.strip(), proposal.description.strip()
            twin = twin_of(title, description, run.wave)
            if twin is not None:
                fresh[label] = twin
                twins.add(label)
                continue
            ref = f"new-{len(run.proposed) + len(fresh) - len(twins) + 1}"
            fresh[label] = NewTheme(ref, title, description)
        used: set[str] = set()
        for given in answer.assignments:
            doc = items.get(given.item.strip())
            label = given.theme.strip()
            if doc is None or doc.key in run.plan.assign:
                continue  # an id we did not ask about, or answered twice: first answer wins
            if label in known:
                run.plan.assign[doc.key] = known[label].target
            elif label in fresh:
                run.plan.assign[doc.key] = fresh[label].ref
                used.add(label)
            else:
                run.plan.rejected += 1  # a theme the prompt never showed: not created
        for label in [lab for lab in fresh if lab in used and lab not in twins]:
            new = fresh[label]
            run.proposed[new.ref] = new
            run.plan.new.append(new)
            run.wave.append(new)
            run.shown.append(
                Shown(
                    f"R{len(run.proposed)}",  # not N: the next call numbers its own N1...
                    new.ref,
                    new.title,
                    new.description,
                    f"{new.title} {new.description}",
                )
            )
        for m in answer.merges:
            a, b = known.get(m.theme.strip()), known.get(m.into.strip())
            if a is None or b is None or a is b:
                run.plan.rejected += a is None or b is None
                continue
            if isinstance(a.target, int) and isinstance(b.target, int):
                young, old = max(a.target, b.target), min(a.target, b.target)
                if (young, old) not in run.plan.merges:
                    run.plan.merges.append((young, old))

    def _drop_small(self, run: RunState) -> None:
        """New themes with fewer items than [themes] min_cluster_size wait for more reports."""
        sizes = Counter(t for t in run.plan.assign.values() if isinstance(t, str))
        small = {ref for ref in run.proposed if sizes[ref] < self.min_cluster_size}
        if not small:
            return
        run.plan.new = [n for n in run.plan.new if n.ref not in small]
        run.plan.assign = {k: t for k, t in run.plan.assign.items() if t not in small}


def themer_for(model: JsonModel, budget: Budget, config: Config) -> LLMThemer:
    """The model-backed themer: `model` answers, `budget` meters its calls."""

    def call(system: str, user: str, schema: type, items: int) -> Reply:
        return model.generate_json(system, user, schema, "themes", PROMPT_VERSION, items)

    return LLMThemer(
        call,
        config.llm.max_prompt_tokens,
        config.themes.min_cluster_size,
        budget,
        concurrency_for(model.name, config.llm.concurrency),
    )
