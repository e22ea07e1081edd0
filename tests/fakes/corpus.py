"""Made-up GitHub issues and Stack Overflow questions about known problems, for themes tests.

Each problem has its own vocabulary; reports of it are written in different words by
different people on both sources, with unrelated filler, so grouping them is not trivial.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from triage.sources.base import ItemIn, github_key, stackexchange_key


@dataclass(frozen=True)
class Problem:
    name: str
    phrases: tuple[str, ...]  # what every report of it mentions, in some order and subset


PROBLEMS = [
    Problem(
        "streaming",
        (
            "streaming response",
            "stream stops",
            "generate_content_stream",
            "chunk",
            "cut off",
            "server-sent events",
            "truncated output",
        ),
    ),
    Problem(
        "quota",
        (
            "429 RESOURCE_EXHAUSTED",
            "quota exceeded",
            "rate limit",
            "requests per minute",
            "free tier",
            "retry after",
        ),
    ),
    Problem(
        "safety",
        (
            "finish_reason SAFETY",
            "safety filter",
            "blocked prompt",
            "harm category",
            "safety_settings BLOCK_NONE",
            "empty candidates",
        ),
    ),
    Problem(
        "function-calling",
        (
            "function calling",
            "function_declarations",
            "tool call arguments",
            "malformed JSON args",
            "automatic function calling",
            "FunctionResponse",
        ),
    ),
    Problem(
        "embeddings",
        (
            "embed_content",
            "embedding dimension",
            "output_dimensionality",
            "vector size 3072",
            "task_type RETRIEVAL_DOCUMENT",
            "cosine similarity",
        ),
    ),
    Problem(
        "upload",
        (
            "file upload",
            "files.upload",
            "PDF file",
            "mime type",
            "file state PROCESSING",
            "uploaded file not found",
        ),
    ),
    Problem(
        "auth",
        (
            "API key not valid",
            "PERMISSION_DENIED",
            "403 forbidden",
            "service account",
            "GOOGLE_API_KEY environment variable",
            "credentials",
        ),
    ),
    Problem(
        "json-mode",
        (
            "response_schema",
            "response_mime_type application/json",
            "structured output",
            "pydantic model schema",
            "invalid JSON response",
            "enum values",
        ),
    ),
]

FILLER = [
    "I am using python 3.11 on ubuntu",
    "This worked last week",
    "Any idea what I am doing wrong? Thanks in advance for any help",
    "The docs do not mention this",
    "Our team runs this in production and it affects customers",
    "Steps to reproduce are below",
    "Expected behaviour differs from actual behaviour",
    "Happens on macOS and Windows too",
    "Tried upgrading the SDK to the newest version",
    "Same result with curl",
    "Maybe related to a recent change.",
]

GH_TITLES = ("{a} fails with {b}", "Bug: {a} when using {b}", "{a}: {b} since latest release")
SO_TITLES = ("How do I fix {a} with {b}?", "Why does {a} happen with {b}?", "{a} and {b} in python")


def report(
    problem: Problem,
    rng: random.Random,
    source: str,
    number: int,
    created: datetime,
    state: str = "open",
) -> ItemIn:
    """One report of `problem` on `source`, worded differently each time."""
    a, b, *rest = rng.sample(problem.phrases, k=min(len(problem.phrases), rng.randint(4, 5)))
    templates = GH_TITLES if source == "github" else SO_TITLES
    title = rng.choice(templates).format(a=a, b=b)
    sentences = [f"I see {p}." for p in rest] + rng.sample(FILLER, k=3)
    rng.shuffle(sentences)
    body = " ".join(sentences)
    if source == "github":
        key, url = github_key("acme/sdk", number), f"https://github.com/acme/sdk/issues/{number}"
        scope = "acme/sdk"
    else:
        key = stackexchange_key("stackoverflow", number)
        url, scope = f"https://stackoverflow.com/questions/{number}", "stackoverflow"
    return ItemIn(
        key=key,
        source=source,  # type: ignore[arg-type]
        scope=scope,
        number=number,
        url=url,
        title=title,
        body=body,
        state=state,  # type: ignore[arg-type]
        created_at=created,
        updated_at=created,
    )


def batch(
    problems: list[Problem],
    per_problem: int,
    start: datetime,
    seed: int = 0,
    first_number: int = 1,
) -> list[ItemIn]:
    """`per_problem` reports of each problem, alternating sources, spread over one day."""
    rng = random.Random(seed)
    items = []
    number = first_number
    for p in problems:
        for i in range(per_problem):
            source = "github" if i % 2 == 0 else "stackexchange"
            created = start + timedelta(minutes=rng.randint(0, 24 * 60 - 1))
            items.append(report(p, rng, source, number, created))
            number += 1
    return items


_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "amber",
    "basil",
    "cedar",
    "dune",
    "ember",
    "fern",
    "grove",
    "heath",
    "iris",
    "jade",
    "kelp",
    "lotus",
    "maple",
    "nectar",
    "onyx",
    "pearl",
    "quartz",
    "reed",
    "sage",
    "thorn",
    "umber",
    "vale",
    "willow",
    "yarrow",
    "zinnia",
]


def synthetic_problems(count: int, seed: int = 0) -> list[Problem]:
    """Many distinct problems for benchmarks: each combines made-up component and symptom terms."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        words = rng.sample(_WORDS, k=6)
        phrases = tuple(
            f"{w}{i} {rng.choice(['error', 'crash', 'timeout', 'config', 'client', 'model'])}"
            for w in words
        )
        out.append(Problem(f"p{i}", phrases))
    return out
