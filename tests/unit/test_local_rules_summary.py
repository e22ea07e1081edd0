"""Rules for sources with no labelled history, and extractive summaries."""

from __future__ import annotations

from triage.config import DEFAULT_CATEGORIES
from triage.providers.local import rules
from triage.providers.local.summarize import summarize

CATS = dict(DEFAULT_CATEGORIES)


def test_template_headings_decide_over_loose_words() -> None:
    body = "### Steps to reproduce\n1. open it\n### Expected behavior\nno error\n"
    assert rules.classify("Sidebar flickers", body, CATS).category == "bug"
    feature = (
        "**Is your feature request related to a problem?**\nNo.\n"
        "**Describe the solution you'd like**"
    )
    assert rules.classify("Sidebar colours", feature, CATS).category == "feature"


def test_questions_and_docs_by_keywords() -> None:
    assert rules.classify("How do I configure the proxy?", "", CATS).category == "question"
    assert rules.classify("Typo in the README", "", CATS).category == "docs"


def test_rule_confidence_stays_below_label_writing_thresholds() -> None:
    body = "### Steps to reproduce\n### Expected behavior\ncrash, error, exception, traceback"
    guess = rules.classify("Crash on start: error", body, CATS)
    assert guess.confidence <= rules.MAX_RULE_CONFIDENCE < 0.8


def test_rules_only_answer_categories_the_taxonomy_has() -> None:
    cats = {"defect": "Something is broken", "idea": "A wish for something new"}
    guess = rules.classify("Please add dark mode", "It would be nice", cats)
    assert guess.category in cats


def test_priority_from_severity_words_only_when_the_level_exists() -> None:
    levels = ["low", "medium", "high", "critical"]
    assert rules.priority("Segfault on save", "", levels, "medium") == "high"
    assert rules.priority("Token leak is a security hole", "", levels, "medium") == "critical"
    assert rules.priority("Rename a button", "", levels, "medium") == "medium"
    assert rules.priority("Segfault on save", "", ["p1", "p2"], "p2") == "p2"


def test_summary_is_title_and_best_sentences_without_code_or_logs() -> None:
    body = (
        "### Describe the bug\n"
        "The export button writes an empty file when the report has more than ten pages.\n\n"
        "```\nTraceback (most recent call last):\n  File 'x.py', line 3\n```\n"
        "I tried it with two browsers and the export of long reports is always empty.\n"
        "Thanks a lot for the great tool, we use it every day in our team!\n"
        "2024-01-01 12:00:01 INFO 0x7fff 12 34 56\n"
    )
    text = summarize("Export writes empty file", body, 2)
    assert text.startswith("Export writes empty file.")
    assert "export button writes an empty file" in text
    assert "Traceback" not in text and "0x7fff" not in text
    assert "###" not in text


def test_summary_sentence_count_follows_the_setting() -> None:
    body = "First sentence about the export problem here. Second one about the export too. Third."
    assert summarize("Title", body, 0) == "Title."
    one = summarize("Title", body, 1)
    assert one.count(".") == 2  # title + one sentence
