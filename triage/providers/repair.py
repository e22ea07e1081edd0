"""Send one packed batch to an LLM and repair what comes back, for any JSON-answering provider.

The rules: every id is answered exactly once (missing ids are asked again in a smaller batch);
invalid JSON is retried once, then the batch is split; an answer cut at the output limit splits
the batch; a blocked answer (safety filter) splits the batch until the blocked item stands alone,
which is then marked for human review while the rest of the batch still lands.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from triage.logs import get_logger
from triage.providers.base import ClassifyOutcome, ItemText, Review, Taxonomy, validate_answers
from triage.providers.calls import CallFailed, Reply
from triage.providers.parallel import run_bounded
from triage.providers.prompts import item_ids

log = get_logger("triage.analysis")

_FENCED = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


# call(items, ids) -> Reply; ids[i] is the short id of items[i] in the prompt.
Call = Callable[[Sequence[ItemText], Sequence[str]], Reply]


@dataclass
class _Unit:
    items: list[ItemText]
    invalid: int = 0  # invalid-JSON retries spent on exactly this batch
    round: int = 0  # how many times these items were re-asked as missing


def decode(text: str | None) -> object:
    """The JSON in a model's answer (fences tolerated); ValueError when there is none."""
    if not text:
        raise ValueError("empty answer")
    m = _FENCED.match(text)
    return json.loads(m.group(1) if m else text)


def _halves(unit: _Unit) -> list[_Unit]:
    mid = len(unit.items) // 2
    return [_Unit(unit.items[:mid], round=unit.round), _Unit(unit.items[mid:], round=unit.round)]


def classify_with_repair(
    items: Sequence[ItemText],
    call: Call,
    taxonomy: Taxonomy,
    *,
    invalid_retries: int = 1,
    missing_rounds: int = 2,
) -> ClassifyOutcome:
    """Classify one packed batch, splitting and re-asking until every item has an outcome."""
    out = ClassifyOutcome()
    queue: deque[_Unit] = deque([_Unit(list(items))]) if items else deque()
    # One item can make a model write broken JSON, and splitting finds it in a few calls; a
    # model that never writes usable JSON would be split down to every item (~4 calls each).
    hopeless = 2 * len(items).bit_length() + 4
    invalid = usable = 0
    last = ""
    while queue:
        unit = queue.popleft()
        ids = item_ids(len(unit.items))
        id_to_key = dict(zip(ids, (it.key for it in unit.items), strict=True))
        try:
            reply = call(unit.items, ids)
        except CallFailed as exc:
            if exc.record is not None:
                out.calls.append(exc.record)
            for it in unit.items:
                out.failed[it.key] = exc.reason
            if exc.stop:
                out.stop = exc.reason
                for rest in queue:
                    for it in rest.items:
                        out.failed[it.key] = f"not sent: {exc.reason}"
                break
            continue
        out.calls.append(reply.record)
        _settle(unit, reply, id_to_key, taxonomy, out, queue, invalid_retries, missing_rounds)
        if reply.record.outcome in ("invalid_json", "no_answer"):
            invalid += 1
            last = reply.unusable or "invalid JSON"
        elif reply.record.outcome in ("ok", "partial"):
            usable += 1
        if not usable and invalid >= hopeless:
            out.stop = (
                f"the model answered {invalid} times without usable JSON (last: {last});"
                " stopping (check [llm] provider and model)"
            )
            for rest in queue:
                out.failed.update({it.key: out.stop for it in rest.items})
            break
    return out


def classify_batches(
    batches: Sequence[Sequence[ItemText]], call: Call, taxonomy: Taxonomy, concurrency: int = 1
) -> ClassifyOutcome:
    """Classify packed batches, `concurrency` at once; after a stop, no more are sent."""
    out = ClassifyOutcome()
    sent: set[int] = set()

    def may_start(n: int) -> bool:
        if out.stop:
            return False
        sent.add(n)
        return True

    def work(n: int) -> ClassifyOutcome:
        return classify_with_repair(batches[n], call, taxonomy)

    for _, got in run_bounded(range(len(batches)), work, concurrency, may_start):
        out.extend(got)
    for n, later in enumerate(batches):
        if n not in sent:
            out.failed.update({it.key: f"not sent: {out.stop}" for it in later})
    return out


def _settle(
    unit: _Unit,
    reply: Reply,
    id_to_key: dict[str, str],
    taxonomy: Taxonomy,
    out: ClassifyOutcome,
    queue: deque[_Unit],
    invalid_retries: int,
    missing_rounds: int,
) -> None:
    """Turn one reply into results, reviews, failures or more work."""
    rec, single = reply.record, len(unit.items) == 1
    if reply.blocked is not None:
        rec.outcome = "blocked"
        if single:
            out.reviews.append(Review(unit.items[0].key, reply.blocked, rec))
        else:
            queue.extend(_halves(unit))
        return
    if reply.finish == "MAX_TOKENS":
        rec.outcome = "max_tokens"
        if single:
            out.failed[unit.items[0].key] = "the answer for this item exceeded the output limit"
        else:
            queue.extend(_halves(unit))
        return
    try:
        if reply.unusable is not None:
            raise ValueError(reply.unusable)
        validated = validate_answers(decode(reply.text), id_to_key, taxonomy)
    except ValueError:
        # No usable answer (OTHER, an unknown finish reason, empty content) is retried like
        # invalid JSON: the model may well answer next time.
        rec.outcome = "invalid_json" if reply.unusable is None else "no_answer"
        if reply.unusable is not None:
            rec.error = reply.unusable[:300]
        if unit.invalid < invalid_retries:
            queue.appendleft(_Unit(unit.items, unit.invalid + 1, unit.round))
        elif not single:
            queue.extend(_halves(unit))
        elif reply.unusable is not None:
            out.failed[unit.items[0].key] = f"the model gave no usable answer ({reply.unusable})"
        else:
            out.failed[unit.items[0].key] = "the model answered invalid JSON"
        return
    for result in validated.results:
        result.call = rec
    out.results += validated.results
    if validated.dropped or validated.unknown or validated.duplicates:
        log.info(
            "answers repaired",
            dropped=validated.dropped,
            unknown_ids=validated.unknown,
            duplicate_ids=validated.duplicates,
        )
    if validated.missing:
        rec.outcome = "partial"
        by_id = dict(zip(id_to_key, unit.items, strict=True))
        missing = [by_id[i] for i in validated.missing]
        if unit.round < missing_rounds:
            queue.append(_Unit(missing, round=unit.round + 1))
        else:
            for it in missing:
                out.failed[it.key] = "the model left this item unanswered"


def settle_reply(items: Sequence[ItemText], reply: Reply, taxonomy: Taxonomy) -> ClassifyOutcome:
    """Take one answer as it is (Batch Mode): what would need another call stays pending."""
    out = ClassifyOutcome(calls=[reply.record])
    ids = item_ids(len(items))
    id_to_key = dict(zip(ids, (it.key for it in items), strict=True))
    queue: deque[_Unit] = deque()
    _settle(_Unit(list(items)), reply, id_to_key, taxonomy, out, queue, 0, 0)
    for unit in queue:
        for it in unit.items:
            out.failed[it.key] = "the answer was incomplete; the item needs another call"
    return out
