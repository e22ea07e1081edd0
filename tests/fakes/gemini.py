"""A fake Gemini API (generativelanguage.googleapis.com) for the real google-genai client.

Serves `/v1` and `/v1beta`: models get/list, generateContent (honouring responseSchema or
responseJsonSchema), countTokens, cachedContents, batchGenerateContent with batches polling,
embedContent and batchEmbedContents. Tokens are counted as about four characters each and
reported in `usageMetadata` the way Gemini does (promptTokenCount includes cached tokens).

The answer to a prompt comes from a responder chosen by the `purpose: NAME` line of the system
instruction: `FakeGemini.responders[NAME] = fn(prompt, schema) -> dict`. "classify" is the
keyword classifier in tests/fakes/keyword_model.py; themes or duplicates can register their own.

Models (tests/fakes/gemini_models.py): today's are listed, retired ones answer 404 NOT_FOUND, a
deprecated one answers from its successor; thinkingConfig is checked per model (400 as the real
API) and drives `thoughtsTokenCount`. `latency` makes a 100-item answer take that many seconds
(scaled by the items in the prompt); `generate_times` records when each call arrived.

Fault switches: `fail(429|500|503)`, `invalid_json_next`, `drop_answers_next` (missing ids),
`finish_other_next` (finishReason OTHER, no content), `empty_content_next` (STOP, no parts),
`max_output_tokens` (MAX_TOKENS), `safety_marker` + `safety_mode` (SAFETY block, candidate or
prompt level, or a bare promptFeedback), `obey_injection`, `cache_error`, `batch_error_marker`,
`fail_batches`.

Standalone: `python -m tests.fakes.gemini --port 0` prints the base URL and serves until killed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from tests.fakes import gemini_models, keyword_model
from tests.fakes.gemini_faults import FaultsMixin
from tests.fakes.gemini_models import DEFAULT_MODELS
from tests.fakes.gemini_store import (
    BatchesMixin,
    CachesMixin,
    api_error,
    count_tokens,
    texts_of,
)
from tests.fakes.server import FakeServer, Request, Response

V = r"/(?P<v>v1|v1beta|v1alpha)"
M = r"models/(?P<model>[^/:]+)"
DEFAULT_KEY = "fake-gemini-key"
ITEM_MARK = re.compile(r"<<<(?:ITEM|PAIR) ")


def embed(text: str, dims: int = 768) -> list[float]:
    """Deterministic hashed bag-of-words vector, L2-normalised: shared words mean similarity."""
    vec = [0.0] * dims
    for word in re.findall(r"[a-z0-9_]+", text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        vec[h % dims] += 1.0
    norm = math.sqrt(sum(x * x for x in vec)) or 1.0
    return [x / norm for x in vec]


def conform(value: Any, schema: Any, root: Any = None) -> Any:
    """Shape `value` by a response schema (OpenAPI-style or JSON Schema): undeclared keys go."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return value
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return conform(value, root.get("$defs", {}).get(ref.rsplit("/", 1)[1]), root)
    kind = str(schema.get("type", "")).lower()
    if kind == "object" and isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        return {k: conform(v, props[k], root) for k, v in value.items() if k in props}
    if kind == "array" and isinstance(value, list):
        return [conform(v, schema.get("items"), root) for v in value]
    return value


@dataclass
class Prompt:
    """What a responder sees of one generateContent request."""

    system: str
    user: str
    model: str
    fake: FakeGemini


Responder = Callable[[Prompt, Any], Any]


def classify_responder(prompt: Prompt, schema: Any) -> Any:
    return keyword_model.answer_classify(prompt.system, prompt.user, prompt.fake.obey_injection)


def default_responder(prompt: Prompt, schema: Any) -> Any:
    return {} if schema else "OK"


class FakeGemini(FaultsMixin, CachesMixin, BatchesMixin, FakeServer):
    """`with FakeGemini() as fake:` then point google-genai at `fake.base_url`."""

    responders: ClassVar[dict[str, Responder]] = {"classify": classify_responder}

    def __init__(self, api_key: str = DEFAULT_KEY, models: dict[str, list[str]] | None = None):
        super().__init__()
        self._state_lock = threading.RLock()
        self._default_key = api_key
        self._default_models = dict(DEFAULT_MODELS if models is None else models)
        self.reset()
        self._routes_setup()

    def reset(self) -> None:
        """Back to a fresh server (switches, caches, batches, log) without restarting it."""
        with self._lock:
            self.requests.clear()
            self.faults.clear()
        self.delays.clear()
        self.api_key = self._default_key
        self.models = dict(self._default_models)
        self.caches: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        # switches
        self.obey_injection = False
        self.safety_marker: str | None = "SAFETY-TRIGGER"
        # "candidate" (finishReason SAFETY), "prompt" (promptFeedback.blockReason) or "feedback"
        # (no candidates and a promptFeedback holding only a blockReasonMessage)
        self.safety_mode = "candidate"
        self.invalid_json_next = 0
        self.drop_answers_next = 0
        self.max_output_tokens: int | None = None  # the model's own output limit
        self.min_cache_tokens = 4096  # Gemini 3.x's minimum for an explicit cache
        # seconds a 100-item answer takes (scaled by the items in the prompt; 1 at least)
        self.latency = 0.0
        self.finish_other_next = 0  # answers with finishReason OTHER and no content
        self.empty_content_next = 0  # answers with finishReason STOP and no parts
        self.cache_error: int | None = None  # status for cachedContents create
        self.batch_polls_to_finish = 1  # batches.get calls before a job completes
        self.batch_error_marker = "BATCH-REQUEST-ERROR"
        self.fail_batches = False
        self.max_batch_bytes = 20 * 1024 * 1024
        # observations
        self.usage: list[dict[str, Any]] = []  # usageMetadata of every generateContent answer
        self.generate_times: list[float] = []  # monotonic start of every generateContent
        self.in_flight = self.max_in_flight = 0  # generateContent calls being answered at once
        self.batch_nameless = False  # batchGenerateContent answers an operation without a name
        self.thinking_seen: list[dict[str, Any]] = []  # thinkingConfig of every request

    # -- switches ----------------------------------------------------------------------
    def truncate(self, times: int = 1, path: str = r":generateContent") -> None:
        """The next `times` answers stop mid-body (a connection cut by a proxy): 200, half JSON."""
        cut = '{"candidates": [{"content": {"parts": [{"text": "{\\"results'
        self.add_fault(Response(200, cut), path=path, times=times)

    def expire_caches(self) -> None:
        with self._state_lock:
            self.caches.clear()

    @property
    def generate_calls(self) -> int:
        return len(self.requests_to(r":generateContent$", "POST"))

    # -- plumbing ----------------------------------------------------------------------
    def _routes_setup(self) -> None:
        r = self.route
        r("GET", V + r"/models", self._list_models)
        r("GET", V + "/" + M, self._get_model)
        r("POST", V + "/" + M + r":generateContent", self._generate_route)
        r("POST", V + "/" + M + r":countTokens", self._count_tokens)
        r("POST", V + "/" + M + r":embedContent", self._embed_one)
        r("POST", V + "/" + M + r":batchEmbedContents", self._embed_batch)
        r("POST", V + "/" + M + r":batchGenerateContent", self._batch_create)
        r("GET", V + r"/batches", self._batch_list)
        r("GET", V + r"/batches/(?P<id>[^/:]+)", self._batch_get)
        r("POST", V + r"/batches/(?P<id>[^/:]+):cancel", self._batch_cancel)
        r("DELETE", V + r"/batches/(?P<id>[^/:]+)", self._batch_delete)
        r("POST", V + r"/cachedContents", self._cache_create)
        r("GET", V + r"/cachedContents", self._cache_list)
        r("GET", V + r"/cachedContents/(?P<id>[^/:]+)", self._cache_get)
        r("PATCH", V + r"/cachedContents/(?P<id>[^/:]+)", self._cache_update)
        r("DELETE", V + r"/cachedContents/(?P<id>[^/:]+)", self._cache_delete)

    def dispatch(self, req: Request) -> Response:
        key = req.headers.get("x-goog-api-key") or req.arg("key")
        if key != self.api_key:
            with self._lock:
                self.requests.append(req)
            if not key:
                return api_error(
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without established"
                    " identity). Please use API Key or other form of API consumer identity.",
                )
            return api_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    },
                    # The real API echoes the rejected key back in a debug detail.
                    {
                        "@type": "type.googleapis.com/google.rpc.DebugInfo",
                        "detail": f"Invalid API key: {key}",
                    },
                ],
            )
        return super().dispatch(req)

    def not_found(self, req: Request) -> Response:
        return api_error(404, "NOT_FOUND", f"Method not found: {req.method} {req.path}")

    def _model_missing(self, model: str, v: str, method: str = "generateContent") -> Response:
        return api_error(
            404,
            "NOT_FOUND",
            f"models/{model} is not found for API version {v}, or is not supported for"
            f" {method}. Call ListModels to see the list of available models and their"
            " supported methods.",
        )

    # -- models ------------------------------------------------------------------------
    def _model_info(self, name: str) -> dict[str, Any]:
        return {
            "name": f"models/{name}",
            "version": "001",
            "displayName": name.replace("-", " ").title(),
            "description": f"Fake {name}",
            "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 65_536,
            "supportedGenerationMethods": self.models[name],
            "temperature": 1.0,
            "topP": 0.95,
            "topK": 64,
        }

    def _list_models(self, req: Request, m: re.Match[str]) -> Response:
        names = sorted(self.models)
        size = int(req.arg("pageSize") or 50)
        start = int(req.arg("pageToken") or 0)
        body: dict[str, Any] = {
            "models": [self._model_info(n) for n in names[start : start + size]]
        }
        if start + size < len(names):
            body["nextPageToken"] = str(start + size)
        return Response(200, body)

    def _get_model(self, req: Request, m: re.Match[str]) -> Response:
        if m["model"] not in self.models:
            return self._model_missing(m["model"], m["v"])
        return Response(200, self._model_info(m["model"]))

    # -- generateContent ---------------------------------------------------------------
    def _generate_route(self, req: Request, m: re.Match[str]) -> Response:
        status, body = self.generate(m["model"], req.json(), m["v"])
        return Response(status, body)

    def generate(self, model: str, body: dict[str, Any], v: str = "v1beta") -> tuple[int, Any]:
        """One generateContent answer as (status, JSON body); batches reuse it per request."""
        if model not in self.models or "generateContent" not in self.models[model]:
            resp = self._model_missing(model, v)
            return resp.status, resp.body
        gen = body.get("generationConfig") or {}
        thinking = gemini_models.normal(gen.get("thinkingConfig"))
        with self._state_lock:
            self.generate_times.append(time.monotonic())
            self.thinking_seen.append(thinking)
        problem = gemini_models.thinking_problem(model, thinking)
        if problem:
            resp = api_error(400, "INVALID_ARGUMENT", problem)
            return resp.status, resp.body
        routed = gemini_models.MODELS.get(model)
        version = (routed.routed_to if routed else None) or model
        system = texts_of(body.get("systemInstruction"))
        user = "\n".join(texts_of(c) for c in body.get("contents") or [])
        items = len(ITEM_MARK.findall(user))
        with self._state_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency * max(items, 1) / 100)
        finally:
            with self._state_lock:
                self.in_flight -= 1
        cached_tokens = 0
        prompt_tokens = count_tokens(system) + count_tokens(user)
        if body.get("cachedContent"):
            problem, cache = self._use_cache(str(body["cachedContent"]), model, body)
            if problem is not None:
                return problem.status, problem.body
            assert cache is not None
            cached_tokens = cache["usageMetadata"]["totalTokenCount"]
            prompt_tokens = cached_tokens + count_tokens(user)
            system, user = cache["_system"], cache["_user"] + user
        usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
        if cached_tokens:
            usage["cachedContentTokenCount"] = cached_tokens
        if self.safety_marker and self.safety_marker in user:
            return 200, self._blocked(model, usage)
        fault = self._finish_fault(usage, version)
        if fault is not None:
            return 200, fault
        schema = gen.get("responseJsonSchema") or gen.get("responseSchema")
        text = self._answer_text(Prompt(system, user, model, self), schema, gen)
        limit = gen.get("maxOutputTokens") or self.max_output_tokens
        finish = "STOP"
        if limit and count_tokens(text) > int(limit):
            text, finish = text[: int(limit) * 4], "MAX_TOKENS"
        usage["candidatesTokenCount"] = count_tokens(text)
        usage["thoughtsTokenCount"] = gemini_models.thoughts(model, thinking, items)
        usage["totalTokenCount"] = (
            prompt_tokens + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
        )
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
        with self._state_lock:
            self.usage.append(usage)
        candidate = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "finishReason": finish,
            "index": 0,
        }
        return 200, {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": version,
            "responseId": uuid.uuid4().hex[:20],
        }

    def _answer_text(self, prompt: Prompt, schema: Any, gen: dict[str, Any]) -> str:
        with self._state_lock:
            if self.invalid_json_next > 0:
                self.invalid_json_next -= 1
                return 'Sure! Here are the answers: {"items": [{"id": "i1", "categ'
            drop = self.drop_answers_next > 0
            if drop:
                self.drop_answers_next -= 1
        purpose = keyword_model.purpose_of(prompt.system, prompt.user)
        answer = self.responders.get(purpose, default_responder)(prompt, schema)
        if drop and isinstance(answer, dict) and answer.get("items"):
            answer = {**answer, "items": answer["items"][:-1]}
        if isinstance(answer, str):
            return answer
        answer = conform(answer, schema) if schema else answer
        if schema or gen.get("responseMimeType") == "application/json":
            return json.dumps(answer)
        return "```json\n" + json.dumps(answer, indent=2) + "\n```"

    def _count_tokens(self, req: Request, m: re.Match[str]) -> Response:
        body = req.json() or {}
        inner = body.get("generateContentRequest") or body
        text = "\n".join(texts_of(c) for c in inner.get("contents") or [])
        text += texts_of(inner.get("systemInstruction"))
        n = count_tokens(text)
        return Response(
            200, {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}
        )

    # -- embeddings --------------------------------------------------------------------
    def _embed_model(self, m: re.Match[str]) -> Response | None:
        if "embedContent" not in self.models.get(m["model"], []):
            return self._model_missing(m["model"], m["v"], "embedContent")
        return None

    def _embed_one(self, req: Request, m: re.Match[str]) -> Response:
        problem = self._embed_model(m)
        if problem:
            return problem
        body = req.json() or {}
        dims = int(body.get("outputDimensionality") or 768)
        return Response(200, {"embedding": {"values": embed(texts_of(body.get("content")), dims)}})

    def _embed_batch(self, req: Request, m: re.Match[str]) -> Response:
        problem = self._embed_model(m)
        if problem:
            return problem
        requests = (req.json() or {}).get("requests") or []
        if len(requests) > 100:
            return api_error(
                400,
                "INVALID_ARGUMENT",
                "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n",
            )
        out = [
            {"values": embed(texts_of(r.get("content")), int(r.get("outputDimensionality") or 768))}
            for r in requests
        ]
        return Response(200, {"embeddings": out})


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Gemini API until killed.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--key", default=DEFAULT_KEY, help="API key the fake accepts")
    parser.add_argument("--obey-injection", action="store_true")
    args = parser.parse_args()
    # As `python -m` this file is `__main__`: copy the themes/duplicates answers that
    # tests.fakes.themes_model registers on the importable module's class.
    from tests.fakes import themes_model

    FakeGemini.responders.update(themes_model.FakeGemini.responders)
    fake = FakeGemini(api_key=args.key)
    fake.port = args.port
    fake.obey_injection = args.obey_injection
    fake.start()
    print(fake.base_url, flush=True)
    print(
        f"export TRIAGE_LLM__GEMINI__BASE_URL={fake.base_url} GEMINI_API_KEY={args.key}",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
