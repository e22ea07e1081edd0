"""A fake Slack Web API and incoming webhook on a real local HTTP server.

It keeps the real service's rules that clients trip over: the token comes as
`Authorization: Bearer` (or a `token` argument); arguments come as a query string, a form body
or a JSON body; errors are HTTP 200 with `{"ok": false, "error": NAME}`; blocks are checked
(at most 50, section text at most 3,000 characters, header text at most 150, and about 13,000
characters of block text in all: `msg_blocks_too_long`); a channel may be unknown, archived or
lack the app; file uploads go through files.getUploadURLExternal, a POST of the bytes to the
returned URL, then files.completeUploadExternal. Incoming webhooks answer plain text: `ok`, or
an error name with 400/403/404/410. Rate limits: queue a 429 with Retry-After (`rate_limit`).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.server import FakeServer, Request, Response

TOKEN = "xoxb-1111-2222-faketoken"
CHANNEL_ID, CHANNEL_NAME = "C0TRIAGE01", "triage"
WEBHOOK_PATH = "/services/T000/B000/XXX"
MAX_BLOCKS, SECTION_CHARS, HEADER_CHARS = 50, 3000, 150
BLOCKS_CHARS, TEXT_CHARS = 13_000, 40_000
BLOCK_TYPES = {"section", "header", "divider", "context", "image", "actions", "rich_text"}


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    via: str = "api"  # api | webhook
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Upload:
    file_id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None


def _ok(**data: Any) -> Response:
    return Response(200, {"ok": True, **data})


def _error(name: str, **data: Any) -> Response:
    return Response(200, {"ok": False, "error": name, **data})


def block_errors(blocks: Any) -> tuple[str, list[str]] | None:
    """What Slack would refuse in a blocks array: (error name, details) or None."""
    if not isinstance(blocks, list):
        return "invalid_blocks_format", ["blocks must be an array"]
    if len(blocks) > MAX_BLOCKS:
        return "invalid_blocks", [f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"]
    problems, total = [], 0
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            problems.append(f"unknown block type [json-pointer:/blocks/{i}/type]")
            continue
        text = (block.get("text") or {}).get("text", "")
        limit = SECTION_CHARS if kind == "section" else HEADER_CHARS if kind == "header" else None
        if limit and len(text) > limit:
            problems.append(
                f"must be less than {limit + 1} characters [json-pointer:/blocks/{i}/text/text]"
            )
        if kind == "header" and (block.get("text") or {}).get("type") != "plain_text":
            problems.append(f"must be plain_text [json-pointer:/blocks/{i}/text/type]")
        if kind == "context" and len(block.get("elements") or []) > 10:
            problems.append(f"no more than 10 items allowed [json-pointer:/blocks/{i}/elements]")
        total += len(text) + sum(len(e.get("text", "")) for e in block.get("elements") or [])
    if problems:
        return "invalid_blocks", problems
    if total > BLOCKS_CHARS:
        return "msg_blocks_too_long", []
    return None


class FakeSlack(FakeServer):
    def __init__(self, tokens: tuple[str, ...] = (TOKEN,)) -> None:
        super().__init__()
        self.tokens = set(tokens)
        self.channels: dict[str, str] = {CHANNEL_ID: CHANNEL_NAME, "C0OTHER001": "other"}
        self.members: set[str] = {CHANNEL_ID}  # channels the app has been invited to
        self.archived: set[str] = set()
        self.webhooks: dict[str, str] = {WEBHOOK_PATH: CHANNEL_ID}
        self.messages: list[Posted] = []
        self.uploads: dict[str, Upload] = {}
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        self.post_calls = 0
        self.fail_posts: dict[int, str] = {}  # n-th chat.postMessage call (1-based) -> error
        self.route("POST", r"/api/chat\.postMessage", self._post_message)
        self.route("POST", r"/api/auth\.test", self._auth_test)
        self.route("POST", r"/api/conversations\.replies", self._replies)
        self.route("POST", r"/api/conversations\.history", self._history)
        self.route("POST", r"/api/files\.getUploadURLExternal", self._upload_url)
        self.route("POST", r"/upload/v1/(?P<id>\w+)", self._upload_bytes)
        self.route("POST", r"/api/files\.completeUploadExternal", self._complete_upload)
        self.route("POST", r"/services/(?P<hook>.+)", self._webhook)

    # -- scenarios -----------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    @property
    def webhook_url(self) -> str:
        return self.base_url + WEBHOOK_PATH

    def rate_limit(
        self, path: str = "chat.postMessage", times: int = 1, retry_after: int = 0
    ) -> None:
        """The next `times` calls answer 429 with Retry-After (as Slack does per method)."""
        body: Any = "" if path.startswith("/services") else {"ok": False, "error": "ratelimited"}
        self.add_fault(
            Response(429, body, headers={"Retry-After": str(retry_after)}),
            path=path.replace(".", r"\."),
            times=times,
        )

    def fail(self, method: str, error: str, times: int = 1, **extra: Any) -> None:
        """The next `times` calls of `method` answer ok:false with `error`."""
        path = f"/api/{method}".replace(".", r"\.")
        self.add_fault(_error(error, **extra), path=path, times=times)

    def thread(self, ts: str) -> list[Posted]:
        return [m for m in self.messages if m.thread_ts == ts]

    # -- request parsing -----------------------------------------------------------------
    @staticmethod
    def args(req: Request) -> dict[str, Any]:
        """Arguments from the query string, a form body or a JSON body, as Slack accepts."""
        out: dict[str, Any] = {k: v[0] for k, v in req.query.items()}
        ctype = req.headers.get("content-type", "")
        if "application/json" in ctype and req.body:
            out.update(req.json())
        elif req.body:
            out.update({k: v[0] for k, v in parse_qs(req.body.decode()).items()})
        return out

    def _auth(self, req: Request, args: dict[str, Any]) -> Response | None:
        header = req.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else args.get("token")
        if not token:
            return _error("not_authed")
        if token not in self.tokens:
            return _error("invalid_auth")
        return None

    def _authed_channel(
        self, req: Request, args: dict[str, Any]
    ) -> tuple[str | None, Response | None]:
        """The token checked, then the channel the call names."""
        if (denied := self._auth(req, args)) is not None:
            return None, denied
        return self._channel(args.get("channel"))

    def _channel(self, ref: str | None) -> tuple[str | None, Response | None]:
        name = (ref or "").lstrip("#")
        cid = (
            name
            if name in self.channels
            else next((c for c, n in self.channels.items() if n == name), None)
        )
        if cid is None:
            return None, _error("channel_not_found")
        if cid in self.archived:
            return None, _error("is_archived")
        if cid not in self.members:
            return None, _error("not_in_channel")
        return cid, None

    def _next_ts(self) -> str:
        with self._seq_lock:
            n = next(self._seq)
        return f"{int(time.time())}.{n:06d}"  # seconds now, unique and rising as Slack's are

    # -- Web API methods -----------------------------------------------------------------
    def _post_message(self, req: Request, _m: Any) -> Response:
        with self._lock:
            self.post_calls += 1
            scheduled = self.fail_posts.pop(self.post_calls, None)
        if scheduled:
            return _error(scheduled)
        args = self.args(req)
        cid, err = self._authed_channel(req, args)
        if err is not None:
            return err
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return _error("invalid_blocks_format")
        text = args.get("text") or ""
        if not text and not blocks:
            return _error("no_text")
        if len(text) > TEXT_CHARS:
            return _error("msg_too_long")
        if blocks is not None and (problem := block_errors(blocks)):
            return _error(problem[0], errors=problem[1])
        ts = self._next_ts()
        thread_ts = args.get("thread_ts")
        posted = Posted(str(cid), ts, text, blocks or [], thread_ts, "api", args)
        with self._lock:
            self.messages.append(posted)
        message = {"type": "message", "subtype": "bot_message", "text": text, "ts": ts}
        message.update({"username": "triage", "bot_id": "B0FAKE0001", "blocks": blocks or []})
        if thread_ts:
            message["thread_ts"] = thread_ts
        return _ok(channel=cid, ts=ts, message=message)

    def _replies(self, req: Request, _m: Any) -> Response:
        """conversations.replies: the parent then its replies, oldest first; metadata only when
        include_all_metadata is set, as Slack does."""
        args = self.args(req)
        cid, err = self._authed_channel(req, args)
        if err is not None:
            return err
        ts = str(args.get("ts") or "")
        with self._lock:
            thread = [m for m in self.messages if m.channel == cid and ts in (m.ts, m.thread_ts)]
        if not thread:
            return _error("thread_not_found")
        return _ok(messages=[self._seen(m, args) for m in thread], has_more=False)

    def _history(self, req: Request, _m: Any) -> Response:
        """conversations.history: the channel's top-level messages, newest first, from a channel
        id only (a name is channel_not_found); `oldest`/`latest` exclusive; pages of `limit`
        with `has_more` and `response_metadata.next_cursor`; metadata as for replies."""
        args = self.args(req)
        if (denied := self._auth(req, args)) is not None:
            return denied
        if str(args.get("channel")) not in self.channels:
            return _error("channel_not_found")
        cid, err = self._channel(args.get("channel"))
        if err is not None:
            return err
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or 9e12)
        with self._lock:
            top = [m for m in self.messages if m.channel == cid and m.thread_ts is None]
        top = [m for m in reversed(top) if oldest < float(m.ts) < latest]
        cursor = str(args.get("cursor") or "")
        start = int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0
        limit = int(args.get("limit") or 100)
        page = top[start : start + limit]
        more = start + limit < len(top)
        nxt = base64.b64encode(f"next_ts:{start + limit}".encode()).decode() if more else ""
        return _ok(
            messages=[self._seen(m, args) for m in page],
            has_more=more,
            pin_count=0,
            response_metadata={"next_cursor": nxt},
        )

    @staticmethod
    def _seen(m: Posted, args: dict[str, Any]) -> dict[str, Any]:
        """A posted message as reading methods show it: metadata only with include_all_metadata."""
        message: dict[str, Any] = {"type": "message", "text": m.text, "ts": m.ts}
        message.update({"bot_id": "B0FAKE0001", "thread_ts": m.thread_ts or m.ts})
        meta = m.args.get("metadata")
        if isinstance(meta, str):
            meta = json.loads(meta)
        if str(args.get("include_all_metadata")).lower() in ("1", "true") and meta:
            message["metadata"] = meta
        return message

    def _auth_test(self, req: Request, _m: Any) -> Response:
        if (denied := self._auth(req, self.args(req))) is not None:
            return denied
        return _ok(
            url="https://fake-workspace.slack.com/",
            team="Fake Workspace",
            user="triage",
            team_id="T000",
            user_id="U000",
            bot_id="B0FAKE0001",
            is_enterprise_install=False,
        )

    def _upload_url(self, req: Request, _m: Any) -> Response:
        args = self.args(req)
        if (denied := self._auth(req, args)) is not None:
            return denied
        if not args.get("filename") or not str(args.get("length", "")).isdigit():
            return _error("invalid_arguments")
        with self._seq_lock:
            file_id = f"F{next(self._seq):09d}"
        self.uploads[file_id] = Upload(file_id, args["filename"], int(args["length"]))
        return _ok(upload_url=f"{self.base_url}/upload/v1/{file_id}", file_id=file_id)

    def _upload_bytes(self, req: Request, m: Any) -> Response:
        upload = self.uploads.get(m["id"])
        if upload is None:
            return Response(404, "not found", content_type="text/plain")
        upload.data = req.body
        return Response(200, f"OK - {len(req.body)}", content_type="text/plain")

    def _complete_upload(self, req: Request, _m: Any) -> Response:
        args = self.args(req)
        if (denied := self._auth(req, args)) is not None:
            return denied
        try:
            wanted = json.loads(args.get("files") or "[]")
        except ValueError:
            return _error("invalid_arguments")
        cid = None
        if args.get("channel_id"):
            cid, err = self._channel(args["channel_id"])
            if err is not None:
                return err
        done = []
        for f in wanted:
            upload = self.uploads.get(f.get("id", ""))
            if upload is None or upload.data is None:
                return _error("file_not_found")
            upload.title, upload.channel = f.get("title"), cid
            upload.thread_ts = args.get("thread_ts")
            done.append(
                {
                    "id": upload.file_id,
                    "name": upload.filename,
                    "title": upload.title,
                    "size": len(upload.data),
                    "mimetype": "image/png",
                }
            )
        return _ok(files=done)

    # -- incoming webhook ----------------------------------------------------------------
    def _webhook(self, req: Request, _m: Any) -> Response:
        def text(status: int, body: str) -> Response:
            return Response(status, body, content_type="text/html")

        cid = self.webhooks.get(req.path)
        if cid is None:
            return text(404, "no_service")
        if cid in self.archived:
            return text(410, "channel_is_archived")
        try:
            payload = json.loads(req.body or b"")
        except ValueError:
            return text(400, "invalid_payload")
        if not isinstance(payload, dict):
            return text(400, "invalid_payload")
        blocks, body_text = payload.get("blocks"), payload.get("text") or ""
        if not body_text and not blocks:
            return text(400, "no_text")
        if blocks is not None and (problem := block_errors(blocks)):
            return text(400, problem[0])
        with self._lock:
            self.messages.append(
                Posted(cid, self._next_ts(), body_text, blocks or [], None, "webhook", payload)
            )
        return text(200, "ok")

    def not_found(self, req: Request) -> Response:
        if req.path.startswith("/api/"):
            return _error("unknown_method")
        return Response(404, "not found", content_type="text/plain")
