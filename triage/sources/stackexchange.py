"""Stack Exchange questions by tag (httpx), oldest activity first, one Source per tag.

Incremental sync asks `/questions?sort=activity&order=asc&min=<cursor>`: `min` bounds the sort
field (last activity), so edited and newly answered old questions come back too. `fromdate`
bounds creation dates and serves `backfill --since` only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from triage.clients.stackexchange import StackExchangeClient, next_allowed, note_backoff, probe
from triage.errors import ConfigError, QuotaExhausted, SourceError
from triage.sources.base import (
    CheckDeps,
    ItemIn,
    Page,
    Source,
    SourceDeps,
    format_cursor,
    parse_cursor,
    stackexchange_key,
)
from triage.sources.html_text import html_to_text

METHOD = "questions"
# Question fields kept beside the columns (epoch dates become ISO strings).
_EXTRA_DATES = ("last_edit_date", "protected_date", "locked_date", "community_owned_date")
_EXTRA_PLAIN = ("bounty_amount", "content_license", "favorite_count", "up_vote_count")


def from_epoch(value: int | float) -> datetime:
    return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)


def to_epoch(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def to_item(site: str, q: dict[str, Any]) -> ItemIn:
    """One API question -> ItemIn; titles, names and bodies arrive HTML-encoded."""
    qid = int(q["question_id"])
    owner = q.get("owner") or {}
    closed = q.get("closed_date")
    extra: dict[str, Any] = {k: format_cursor(from_epoch(q[k])) for k in _EXTRA_DATES if q.get(k)}
    extra.update({k: q[k] for k in _EXTRA_PLAIN if k in q})
    if owner.get("user_id") is not None:
        extra["owner_user_id"] = owner["user_id"]
    if "reputation" in owner:
        extra["owner_reputation"] = owner["reputation"]
    name, reason = owner.get("display_name"), q.get("closed_reason")
    return ItemIn(
        key=stackexchange_key(site, qid),
        source="stackexchange",
        scope=site,
        number=qid,
        url=q.get("link") or "",
        title=html.unescape(q.get("title") or ""),
        body=html_to_text(q.get("body") or ""),
        state="closed" if closed else "open",
        state_reason=html.unescape(reason) if closed and reason else None,
        author=html.unescape(name) if name else None,
        tags=list(q.get("tags") or []),
        comments=int(q.get("comment_count") or 0),
        score=int(q.get("score") or 0),
        answer_count=int(q.get("answer_count") or 0),
        is_answered=bool(q.get("is_answered")),
        accepted_answer_id=q.get("accepted_answer_id"),
        view_count=int(q.get("view_count") or 0),
        created_at=from_epoch(q["creation_date"]),
        updated_at=from_epoch(q.get("last_activity_date") or q["creation_date"]),
        closed_at=from_epoch(closed) if closed else None,
        extra=extra,
    )


def next_page(raw: list[dict[str, Any]], has_more: bool, low: int | None, page_no: int) -> int:
    """The `page` for the next query, whose `min` is this page's last activity date."""
    if not raw:
        return 1  # nothing here (items moved on since): start over from page 1
    first, last = raw[0]["last_activity_date"], raw[-1]["last_activity_date"]
    if has_more and first == last:
        # The whole page shares one date: the same `min` again would repeat it, so go deeper.
        return page_no + 1 if last == low else 2
    return 1


class StackExchangeSource:
    """The questions of one tag on one site."""

    def __init__(self, client: StackExchangeClient, site: str, tag: str) -> None:
        self.client, self.site, self.tag = client, site, tag
        cfg = client.cfg
        self.pagesize, self.filter = cfg.pagesize, cfg.filter

    @property
    def name(self) -> str:
        return f"stackexchange:{self.site}/{self.tag}"

    def total_hint(self) -> int | None:
        return None  # knowing the total would cost a request on every sync

    def pages(
        self, cursor: str | None, since: datetime | None, state: dict[str, Any]
    ) -> Iterator[Page]:
        """Page by `min` = last activity seen; step `page=` only while a page shares one date.

        Re-querying from page 1 after each page keeps `page` shallow (the API refuses deep
        pages without a key) at the cost of repeating the boundary items, which upsert as
        unchanged.
        """
        self._restore_backoff(state)
        low = to_epoch(parse_cursor(cursor)) if cursor else None
        # A page number is only meaningful for the `min` it was computed with.
        page_no = int(state.get("page", 1)) if cursor and state.get("page_at") == cursor else 1
        checked = False
        while True:
            sent = self.client.requests
            data = self.client.get(METHOD, self._params(low, since, page_no))
            raw = data.get("items") or []
            has_more = bool(data.get("has_more")) and bool(raw)
            if raw and not checked:
                self._check_bodies(raw)
                checked = True
            page_no = next_page(raw, has_more, low, page_no)
            if raw:
                low = int(raw[-1]["last_activity_date"])
            value = format_cursor(from_epoch(low)) if low is not None else None
            yield Page(
                items=[to_item(self.site, q) for q in raw],
                cursor=value,
                requests=self.client.requests - sent,  # retries count against the quota too
                quota_remaining=data.get("quota_remaining"),
                state=self._state(value, page_no),
            )
            if not has_more:
                return

    def _params(self, low: int | None, since: datetime | None, page_no: int) -> dict[str, Any]:
        params: dict[str, Any] = {
            "site": self.site,
            "tagged": self.tag,
            "sort": "activity",
            "order": "asc",
            "pagesize": self.pagesize,
            "filter": self.filter,
        }
        if page_no > 1:
            params["page"] = page_no
        if low is not None:
            params["min"] = low
        if since is not None:
            params["fromdate"] = to_epoch(since)
        return params

    def _state(self, cursor: str | None, page_no: int) -> dict[str, Any]:
        state: dict[str, Any] = {}
        if page_no > 1:
            state.update(page=page_no, page_at=cursor)
        until = next_allowed(self.client.api_url, METHOD)
        if until > datetime.now(UTC).timestamp():
            state["backoff_until"] = until  # honoured by the next process too
        return state

    def _restore_backoff(self, state: dict[str, Any]) -> None:
        until = state.get("backoff_until")
        if isinstance(until, int | float):
            note_backoff(self.client.api_url, METHOD, float(until))

    def _check_bodies(self, raw: list[dict[str, Any]]) -> None:
        if not raw or any("body" in q for q in raw):
            return
        if self.filter == "withbody":  # the filter carries bodies: the answer did not honour it
            raise SourceError(
                f"{self.client.api_url} answered without question bodies although filter"
                " 'withbody' (which carries question.body) was asked for: check [stackexchange]"
                " api_url points at the API itself, not a proxy that drops the query"
            )
        raise ConfigError(
            f"[stackexchange] filter {self.filter!r} leaves out question bodies;"
            " use 'withbody' or a custom filter that includes question.body"
        )


# Tag and site names as Stack Exchange spells them; anything else would go into the query as is.
_SITE = re.compile(r"[a-z0-9.\-]{1,80}")


def site_name(value: str) -> str:
    """The API's short name of a site, so `stackoverflow.com` keys its items as `stackoverflow`."""
    site = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    for suffix in (".stackexchange.com", ".com"):
        if site.endswith(suffix):
            return site.removesuffix(suffix)
    return site


# Stack Exchange tags: lower-case letters, digits and + # - . (at most 35 characters).
TAG = re.compile(r"^[a-z0-9+#.\-]{1,35}$")


def tag_name(value: str) -> str:
    """The tag as the API names it; `[google-gemini]` or `a b` is a one-line usage error."""
    tag = value.strip().lower()
    if not TAG.match(tag):
        hint = tag.strip("[]<> ")
        better = f" (write {hint!r})" if hint and TAG.match(hint) else ""
        raise ConfigError(
            f"{value!r} is not a tag name{better}: a Stack Exchange tag is one word of"
            " letters, digits and + # - ., e.g. google-gemini"
        )
    return tag


def check_tag(client: StackExchangeClient, site: str, tag: str) -> int:
    """The tag exists on the site (one `/tags/{tag}/info` request); its question count.

    An unknown tag answers `items: []` (https://api.stackexchange.com/docs/tags-by-name).
    """
    data = client.get(f"tags/{quote(tag, safe='')}/info", {"site": site})
    for info in data.get("items") or []:
        if str(info.get("name", "")).lower() == tag:
            return int(info.get("count") or 0)
    raise ConfigError(
        f"Stack Exchange tag {tag!r} does not exist on {site}: check the spelling"
        f" (https://{site}.com/tags lists them)"
    )


def make_sources(deps: SourceDeps, tags: list[str], site: str) -> list[Source]:
    """One source per tag; a question carrying two watched tags is still one item."""
    site = site_name(site)
    if not site:
        raise ConfigError("[stackexchange] site is empty; set it, e.g. site = 'stackoverflow'")
    if not _SITE.fullmatch(site):
        raise ConfigError(
            f"Stack Exchange site {site!r} is not a site name: e.g. stackoverflow, superuser"
        )
    client = deps.stackexchange
    clean = [tag_name(t) for t in tags if t.strip()]
    return [StackExchangeSource(client, site, tag) for tag in dict.fromkeys(clean)]


def doctor_check(deps: CheckDeps) -> str:
    """`triage doctor`: the endpoint answers `/info` for the site, and how much quota is left."""
    cfg = deps.config.stackexchange
    if not cfg.tags:
        return "skipped (no [stackexchange] tags configured)"
    secret = deps.secrets.stackexchange_key
    site = site_name(cfg.site)
    client = probe(cfg, secret.get_secret_value() if secret else None)
    try:
        data = client.get("info", {"site": site})
    finally:
        client.close()
    info = (data.get("items") or [{}])[0]
    left, most = data.get("quota_remaining"), data.get("quota_max")
    if left == 0:
        raise QuotaExhausted(
            f"{cfg.api_url} reachable but today's quota is used up ({most} requests);"
            " it resets at 00:00 UTC"
        )
    key = "" if secret else " (no STACKEXCHANGE_KEY)"
    total = info.get("total_questions", "?")
    return f"{cfg.api_url} reachable, {site} has {total} questions; quota {left}/{most}{key}"
