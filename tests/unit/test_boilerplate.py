"""Issue templates are learned from a source's own items and do not decide themes."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

from triage import boilerplate
from triage.analysis.themes import local
from triage.analysis.themes.model import ThemeDoc

PROBLEMS = {
    "minimap": ["minimap", "flickers", "scrolling", "highlight", "slider"],
    "terminal": ["terminal", "cursor", "shell", "prompt", "blinking"],
    "git": ["git", "commit", "staged", "diff", "branch"],
    "debugger": ["breakpoint", "debugger", "launch", "attach", "stepping"],
}
FEATURES = ["vulkan", "webgl2", "opengl", "rasterization", "canvas_oop", "video_decode"]


def gpu_template(rng: random.Random) -> str:
    """A VS Code style system-info block whose values vary from report to report."""
    status = "<br>".join(f"{f}: {rng.choice(['enabled', 'disabled_off'])}" for f in FEATURES)
    return (
        f"VS Code version: Code 1.8{rng.randint(0, 9)}.{rng.randint(0, 3)}\n"
        f"OS version: Windows_NT x64 10.0.{rng.randint(19000, 22999)}\n"
        "Modes:\n\n<details>\n<summary>System Info</summary>\n\n|Item|Value|\n|---|---|\n"
        f"|CPUs|Intel(R) Core(TM) i{rng.choice([5, 7])} ({rng.choice([8, 12])} x 2803)|\n"
        f"|GPU Status|{status}|\n|Screen Reader|no|\n</details>\n"
        "Does this issue occur when all extensions are disabled?: Yes\n"
    )


def browser_template(rng: random.Random) -> str:
    version = rng.randint(100, 120)
    return (
        "### Steps to reproduce\n\n_No response_\n\n### Environment\n\n"
        f"Version: 1.8{rng.randint(0, 9)}.1\nCommit: {rng.getrandbits(64):016x}\n"
        f"User Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
        f"Gecko) Chrome/{version}.0.0.0 Safari/537.36\nEmbedder: codespaces\n"
        "- [x] I searched existing issues\n"
    )


def reports(n: int = 240) -> tuple[list[ThemeDoc], dict[str, str]]:
    """Reports of four problems, each filed with either template at random."""
    rng = random.Random(7)
    docs, truth = [], {}
    names = list(PROBLEMS)
    for i in range(n):
        problem = names[i % len(names)]
        words = PROBLEMS[problem]
        title = " ".join(rng.sample(words, 3))
        prose = ". ".join(" ".join(rng.sample(words, 3)) for _ in range(3))
        template = gpu_template(rng) if rng.random() < 0.5 else browser_template(rng)
        key = f"github:acme/editor#{i + 1}"
        body = f"{prose}.\n\n{template}"
        docs.append(ThemeDoc(key, "github", title, "", body, str(i), datetime(2025, 1, 1)))
        truth[key] = problem
    return docs, truth


def test_template_blocks_fields_and_lines_are_learned_and_removed() -> None:
    docs, _ = reports(60)
    learned = boilerplate.learn([d.body for d in docs])
    stripped = learned.strip(docs[0].body)
    for word in ("GPU Status", "User Agent", "Mozilla", "extensions are disabled", "OS version"):
        assert word not in stripped
    assert docs[0].body.split(".")[0] in stripped  # the report's own words stay


def test_a_line_few_reports_share_is_not_template() -> None:
    bodies = [f"report {i}\nsome words" for i in range(100)]
    bodies[:3] = [b + "\nTypeError: cannot read x of undefined" for b in bodies[:3]]
    learned = boilerplate.learn(bodies)
    assert "TypeError" in learned.strip(bodies[0])  # three reports sharing an error: signal
    assert "some words" not in learned.strip(bodies[0])  # every report: template


def test_template_words_do_not_decide_themes() -> None:
    docs, truth = reports()
    plan = local.plan_local(docs, [], min_cluster_size=3)
    members: dict[str, Counter[str]] = {}
    for key, ref in plan.assign.items():
        members.setdefault(str(ref), Counter())[truth[key]] += 1
    assert len(plan.assign) >= 0.8 * len(docs)
    for counts in members.values():  # every theme is one problem, whichever template
        assert max(counts.values()) >= 0.95 * sum(counts.values())
    template_words = {"vulkan", "webgl2", "gecko", "safari", "mozilla", "windows_nt", "embedder"}
    for theme in plan.new:
        assert not template_words & set(theme.title.replace(",", " ").split())


def test_the_classifier_drops_template_text_that_says_nothing_of_the_category() -> None:
    from triage.providers.local.features import IssueFeatures

    rng = random.Random(3)
    docs, labels = [], []
    for i in range(200):
        label = "bug" if i % 2 else "feature"
        # Bug reports are filed with a bug template (a category cue); either kind carries a
        # system-info block at random (noise).
        prose = (
            "the editor crashes when I open a large file"
            if label == "bug"
            else "it would be nice to add support for split panes"
        )
        head = "### Expected behavior\nno crash\n" if label == "bug" else "### Proposal\n"
        template = gpu_template(rng) if rng.random() < 0.5 else browser_template(rng)
        docs.append((f"report {i}", f"{head}{prose}\n\n{template}"))
        labels.append(label)
    features = IssueFeatures()
    features.fit_transform(docs, labels)
    words = features.vectorizers["word"].vocabulary_
    for noise in ("vulkan", "webgl2", "mozilla", "gecko", "embedder", "cpus"):
        assert noise not in words
    for cue in ("expected", "behavior", "proposal", "crashes", "panes"):
        assert cue in words
    unlabelled = IssueFeatures()  # without labels nothing is known to be noise: all stays
    unlabelled.fit_transform(docs)
    assert "vulkan" in unlabelled.vectorizers["word"].vocabulary_
