"""A small threaded HTTP server that the service fakes build on (after slack-sdk's mock servers).

Each fake registers routes; every request is logged; queued faults answer the next matching
requests instead of the route (429 with Retry-After, 5xx, bad bodies...); a hold keeps one
request waiting, so a test can act at a known point of a client's run.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return b"" if self.body is None else json.dumps(self.body).encode()


@dataclass
class Fault:
    """Answer the next `times` requests matching `path` (regex) with this response."""

    response: Response
    path: str = ".*"
    method: str | None = None
    times: int = 1


Handler = Callable[[Request, "re.Match[str]"], Response]


class Hold:
    """Blocks one request until `release()`; `reached` is set when it arrives."""

    def __init__(self, pattern: re.Pattern[str], after: int) -> None:
        self.pattern, self.after = pattern, after
        self.reached = threading.Event()
        self.released = threading.Event()
        # Set once the held request has been answered (acted on) after its release.
        self.served = threading.Event()
        self._lock = threading.Lock()

    def check(self, req: Request) -> bool:
        """Wait here if this is the request to hold; True when it was held."""
        with self._lock:  # one request only, even when several arrive at once
            if not self.pattern.search(req.path) or self.released.is_set() or self.reached.is_set():
                return False
            if self.after > 0:
                self.after -= 1
                return False
            self.reached.set()
        self.released.wait(timeout=60)
        return True

    def release(self) -> None:
        self.released.set()


class FakeServer:
    """Start with `with Fake() as fake:`; `fake.base_url` points a client at it."""

    # 0 picks a free port; a standalone fake may set a fixed one before start().
    port: int = 0

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._holds: list[Hold] = []
        # (path pattern, seconds): matching requests take this long to answer (a slow service)
        self.delays: list[tuple[re.Pattern[str], float]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- routing -------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(pattern + r"\Z"), handler))

    def add_fault(
        self, response: Response, path: str = ".*", method: str | None = None, times: int = 1
    ) -> None:
        with self._lock:
            self.faults.append(Fault(response, path, method, times))

    def hold(self, path: str, after: int) -> Hold:
        """Block the request to `path` that comes after `after` matching ones, until released."""
        hold = Hold(re.compile(path), after)
        self._holds.append(hold)
        return hold

    def slow(self, path: str, seconds: float) -> None:
        """Every request whose path matches `path` waits `seconds` before it is answered."""
        self.delays.append((re.compile(path), seconds))

    def wait_on_holds(self, req: Request) -> list[Hold]:
        """Wait on the holds and delays set for this request; the holds it waited on."""
        held = [hold for hold in self._holds if hold.check(req)]
        for pattern, seconds in self.delays:
            if pattern.search(req.path):
                time.sleep(seconds)
        return held

    def _take_fault(self, req: Request) -> Response | None:
        with self._lock:
            for fault in self.faults:
                if (fault.method in (None, req.method)) and re.search(fault.path, req.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault.response
        return None

    def dispatch(self, req: Request) -> Response:
        with self._lock:
            self.requests.append(req)
        held = self.wait_on_holds(req)
        try:
            return self._respond(req)
        finally:
            for hold in held:
                hold.served.set()

    def _respond(self, req: Request) -> Response:
        fault = self._take_fault(req)
        if fault is not None:
            return fault
        for method, pattern, handler in self._routes:
            m = pattern.match(req.path)
            if m and method == req.method:
                return handler(req, m)
        return self.not_found(req)

    def not_found(self, req: Request) -> Response:
        return Response(404, {"message": "Not Found"})

    def requests_to(self, pattern: str, method: str | None = None) -> list[Request]:
        with self._lock:
            return [
                r
                for r in self.requests
                if re.search(pattern, r.path) and method in (None, r.method)
            ]

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without this, Nagle's algorithm and
            # delayed ACKs add ~40 ms to every keep-alive request.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                try:
                    resp = fake.dispatch(req)
                except Exception as exc:  # a bug in a fake must show, not hang the client
                    resp = Response(500, {"message": f"fake server error: {exc!r}"})
                data = resp.encoded()
                self.send_response(resp.status)
                if resp.status != 304:  # a 304 has no body, so no body headers either
                    self.send_header("Content-Type", resp.content_type)
                    self.send_header("Content-Length", str(len(data)))
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._httpd.daemon_threads = True
        # A short poll interval makes stop() quick (the default waits up to 0.5 s per fake).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def serve_until_interrupted(self) -> None:
        """Standalone mode: start, print the base URL for whoever started us, serve until Ctrl-C."""
        self.start()
        print(self.base_url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def not_modified(req: Request, resp: Response) -> Response:
    """ETag a 200 to a GET from its body; a 304 instead when If-None-Match names that ETag.

    If-None-Match compares weakly (RFC 9110 13.1.2): W/"x" matches "x", and `*` any body.
    Returns `resp` itself (with its ETag) unless the answer is the 304.
    """
    if req.method != "GET" or resp.status != 200:
        return resp
    etag = 'W/"' + hashlib.sha256(resp.encoded()).hexdigest() + '"'
    resp.headers = {**resp.headers, "ETag": etag}
    tags = [
        t.strip().removeprefix("W/") for t in (req.headers.get("if-none-match") or "").split(",")
    ]
    if "*" in tags or etag.removeprefix("W/") in tags:
        return Response(304, None, {"ETag": etag})
    return resp
