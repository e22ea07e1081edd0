"""Questions as the Stack Exchange API stores and sends them, and a generator of varied ones."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

SITES = {
    "stackoverflow": "stackoverflow.com",
    "superuser": "superuser.com",
    "serverfault": "serverfault.com",
    "askubuntu": "askubuntu.com",
    "unix": "unix.stackexchange.com",
    "datascience": "datascience.stackexchange.com",
}
START = 1_700_000_000  # 2023-11-14T22:13:20Z: the first generated question's creation date


@dataclass
class Question:
    """A question as the site stores it: `title` and `owner` HTML-encoded, `body` HTML."""

    question_id: int
    title: str
    body: str
    tags: list[str]
    creation_date: int
    last_activity_date: int
    site: str = "stackoverflow"
    owner: str = "user"
    owner_id: int = 1
    score: int = 0
    answer_count: int = 0
    is_answered: bool = False
    accepted_answer_id: int | None = None
    view_count: int = 0
    comment_count: int = 0
    closed_date: int | None = None
    closed_reason: str | None = None
    last_edit_date: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, body: bool, custom: bool) -> dict[str, Any]:
        host = SITES.get(self.site, f"{self.site}.stackexchange.com")
        slug = re.sub(r"[^a-z0-9]+", "-", html.unescape(self.title).lower()).strip("-")[:60]
        out: dict[str, Any] = {
            "tags": list(self.tags),
            "owner": {
                "account_id": self.owner_id + 1000,
                "reputation": 10 + self.owner_id,
                "user_id": self.owner_id,
                "user_type": "registered",
                "profile_image": f"https://www.gravatar.com/avatar/{self.owner_id:032x}",
                "display_name": self.owner,
                "link": f"https://{host}/users/{self.owner_id}/u{self.owner_id}",
            },
            "is_answered": self.is_answered,
            "view_count": self.view_count,
            "answer_count": self.answer_count,
            "score": self.score,
            "last_activity_date": self.last_activity_date,
            "creation_date": self.creation_date,
            "question_id": self.question_id,
            "content_license": "CC BY-SA 4.0",
            "link": f"https://{host}/questions/{self.question_id}/{slug}",
            "title": self.title,
        }
        for name in ("accepted_answer_id", "closed_date", "closed_reason", "last_edit_date"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if body:
            out["body"] = self.body
        if custom:
            out["comment_count"] = self.comment_count
        out.update(self.extra)
        return out


def sample_question(i: int, site: str = "stackoverflow", tag: str = "google-gemini") -> Question:
    """Deterministic, varied questions: entities in titles and names, code in bodies."""
    created = START + i * 60
    title = [
        f"How do I stream responses #{i} from the API?",
        f"Error &quot;400 INVALID_ARGUMENT&quot; when sending List&lt;Part&gt; #{i}",
        f"Why doesn&#39;t generate_content() keep history &amp; context? #{i}",
    ][i % 3]
    body = (
        f"<p>I call <code>client.models.generate_content()</code> in question {i} and it fails"
        " with <strong>&lt;Response [400]&gt;</strong>. See"
        ' <a href="https://ai.google.dev/docs">the docs</a>.</p>\n\n'
        '<pre class="lang-py prettyprint-override"><code>if a &lt; b &amp;&amp; c:\n'
        "    print(&quot;hi&quot;)\n</code></pre>\n\n"
        "<ul>\n<li>tried a retry</li>\n<li>tried <code>stream=True</code></li>\n</ul>\n"
    )
    tags = [tag] + (["python"] if i % 2 else ["javascript", "node.js"])
    q = Question(
        question_id=70_000_000 + i,
        title=title,
        body=body,
        tags=tags,
        creation_date=created,
        last_activity_date=created + (i % 4) * 15,
        site=site,
        owner="Jos&#233; O&#39;Neil" if i % 5 == 0 else f"dev{i % 97}",
        owner_id=100 + i % 97,
        score=i % 7 - 2,
        view_count=10 + i,
        comment_count=i % 3,
    )
    if i % 4 == 1:
        q.answer_count, q.is_answered, q.accepted_answer_id = 1, True, 80_000_000 + i
    if i % 10 == 9:
        q.closed_date, q.closed_reason = created + 600, "Duplicate"
        q.last_activity_date = created + 600
    return q
