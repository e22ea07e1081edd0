"""Theme names and duplicate reasons read as words: no contraction debris, no stray code."""

from __future__ import annotations

from datetime import datetime

from triage.analysis.duplicates.local import judge_offline
from triage.analysis.duplicates.model import Candidate, DupDoc
from triage.analysis.phrases import readable
from triage.analysis.themes.local import plan_local
from triage.analysis.themes.model import ThemeDoc

REPORTS = [
    ("Upload doesn't work for large files", "The file upload doesn't finish; it can't resume."),
    ("Large file upload doesn't complete", "Uploading a large file doesn't work, isn't resumed."),
    ("Upload of large files doesn't finish", "My large file upload doesn't complete at all."),
]
OTHERS = [
    ("Dark mode for the settings page", "Please add a dark theme to the settings."),
    ("Proxy setting is ignored", "The HTTPS proxy from the environment is not used."),
]


def test_contraction_fragments_and_unrelated_identifiers_are_left_out() -> None:
    titles = ["Upload fails", "Upload stops"]
    terms = ["doesn t", "doesn", "file upload", "generate_content", "upload"]
    assert readable(terms, titles) == ["file upload", "upload"]
    # Items about an identifier may be named by it.
    about = ["generate_content times out", "generate_content hangs"]
    assert readable(["generate_content", "doesn"], about) == ["generate_content"]


def test_offline_theme_names_are_whole_words() -> None:
    docs = [
        ThemeDoc(f"github:o/r#{i}", "github", title, "", body, str(i), datetime(2025, 1, 1))
        for i, (title, body) in enumerate(REPORTS + OTHERS)
    ]
    plan = plan_local(docs, [], min_cluster_size=2)
    [theme] = plan.new
    words = theme.title.replace(",", " ").split()
    assert words and not {"doesn", "t", "isn", "can"} & set(words), theme.title
    assert "upload" in theme.title


def test_offline_duplicate_reasons_are_whole_words() -> None:
    a, b = (
        DupDoc(f"k{i}", "github", t, "", body, str(i)) for i, (t, body) in enumerate(REPORTS[:2])
    )
    judged = judge_offline([Candidate(a, b, 0.8, ["doesn t", "large file", "doesn"])])
    assert judged.links[0].reason == "both mention \u201clarge file\u201d"
