"""Prompt text for the LLM providers, and the version that keys every analysis made with it.

Bump PROMPT_VERSION whenever the wording or the answer format changes: stored analyses record
the version, so a new prompt re-analyses items while an unchanged one never repeats work.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from string import Template
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from triage.config import LLMConfig
from triage.plain_text import normalized
from triage.providers.base import Example, ItemText, Taxonomy
from triage.providers.packing import cap_body, cap_title, estimate_tokens, pack

PROMPT_VERSION = "classify-1"
PURPOSE = "classify"
EXAMPLE_MAX_CHARS = 600

ITEM_OPEN = "<<<ITEM {id} {source}>>>"
ITEM_CLOSE = "<<<END>>>"


def _template(name: str) -> Template:
    return Template(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def neutralize(text: str) -> str:
    """Break delimiter look-alikes so untrusted text cannot close its own item.

    Normalised first (fullwidth and zero-width-split markers become plain ones), then broken
    until no run of three remains (`<<<<<` is broken more than once).
    """
    text = normalized(text)
    while "<<<" in text or ">>>" in text:
        text = text.replace("<<<", "<< <").replace(">>>", "> >>")
    return text


def _categories(taxonomy: Taxonomy) -> str:
    lines = []
    for name, description in taxonomy.categories.items():
        labels = ", ".join(taxonomy.label_map.get(name, ()))
        hint = f" (labels: {labels})" if labels else ""
        lines.append(f"- {name}: {description}{hint}")
    return "\n".join(lines)


def _example(ex: Example) -> str:
    title = neutralize(cap_title(ex.title))
    body = neutralize(cap_body(title, ex.body, EXAMPLE_MAX_CHARS))
    labels = ",".join(ex.labels) or "-"
    wrong = f" wrong_labels={','.join(ex.not_labels)}" if ex.not_labels else ""
    head = f"<<<EXAMPLE category={ex.category or '-'} labels={labels}{wrong}>>>"
    return f"{head}\n{title}\n{body}\n{ITEM_CLOSE}"


def example_tokens(ex: Example) -> int:
    """What one example adds to the shared prefix (estimated tokens)."""
    return estimate_tokens(_example(ex)) + 1


def system_instruction(taxonomy: Taxonomy, examples: Sequence[Example]) -> str:
    """The shared prefix of every call: taxonomy, rules and few-shot examples."""
    shots = ""
    labelled = [ex for ex in examples if not ex.not_labels]
    corrected = [ex for ex in examples if ex.not_labels]
    if labelled:
        shots = (
            "\nExamples labelled by the project's maintainers (untrusted data as well):\n"
            + "\n".join(_example(ex) for ex in labelled)
        )
    if corrected:
        shots += (
            "\nCorrections: maintainers removed the wrong_labels from these items after they"
            " were added automatically. Do not give such items those labels:\n"
            + "\n".join(_example(ex) for ex in corrected)
        )
    return _template("classify_system.txt").substitute(
        categories=_categories(taxonomy),
        labels=", ".join(taxonomy.labels) or "(none)",
        priorities=", ".join(taxonomy.priorities),
        examples=shots,
    )


def render_item(item_id: str, item: ItemText, max_chars: int) -> str:
    """One item inside its delimiters, title first, body capped with the cut marked."""
    title = neutralize(cap_title(item.title))
    body = neutralize(cap_body(title, item.body, max_chars))
    head = ITEM_OPEN.format(id=item_id, source=item.source or "item")
    return f"{head}\n{title}\n{body}\n{ITEM_CLOSE}"


def user_prompt(rendered: Sequence[str]) -> str:
    return f"Classify these {len(rendered)} items.\n\n" + "\n\n".join(rendered)


def item_ids(count: int) -> list[str]:
    """Short per-call ids: the model copies them back, so they should be cheap tokens."""
    return [f"i{n}" for n in range(1, count + 1)]


def response_model(taxonomy: Taxonomy) -> type[BaseModel]:
    """The answer schema with the taxonomy as enums, so a schema-following model cannot stray."""

    def choice(values: Sequence[str]) -> Any:
        return Literal[tuple(values)] if values else str

    label: Any = choice(taxonomy.labels)
    fields: dict[str, Any] = {
        "id": (str, ...),
        "category": (choice(list(taxonomy.categories)), ...),
        "labels": (list[label], Field(default_factory=list)),
        "priority": (choice(taxonomy.priorities), ...),
        "summary": (str, ...),
        "confidence": (float, Field(..., ge=0.0, le=1.0)),
    }
    item: Any = create_model("ItemAnswer", **fields)
    return create_model("BatchAnswer", items=(list[item], ...))


def pack_for(
    items: Sequence[ItemText], taxonomy: Taxonomy, examples: Sequence[Example], llm: LLMConfig
) -> list[list[ItemText]]:
    """`pack_items` with the limits of the `[llm]` config."""
    return pack_items(
        items,
        taxonomy,
        examples,
        max_prompt_tokens=llm.max_prompt_tokens,
        max_items=llm.max_items_per_call,
        max_item_chars=llm.max_item_chars,
    )


def pack_items(
    items: Sequence[ItemText],
    taxonomy: Taxonomy,
    examples: Sequence[Example],
    *,
    max_prompt_tokens: int,
    max_items: int,
    max_item_chars: int,
) -> list[list[ItemText]]:
    """Split items into prompts that fit the token budget beside the shared instruction."""
    prefix = estimate_tokens(system_instruction(taxonomy, examples)) + 20
    # A long-context prefix ([llm] shot_tokens) is cached once: it never squeezes the items
    # below half of max_prompt_tokens.
    room = max(max_prompt_tokens - prefix, max_prompt_tokens // 2, 1)
    return pack(
        items,
        lambda it: estimate_tokens(render_item("i000", it, max_item_chars)) + 1,
        room,
        max_items,
    )
