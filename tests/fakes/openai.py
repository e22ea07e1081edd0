"""A fake OpenAI-compatible server (OpenAI, Ollama, vLLM): chat completions and the model list.

Its "model" is the same deterministic keyword classifier as the Gemini fake, so end-to-end
results can be checked. It honours `response_format` json_schema the way OpenAI does (a strict
schema must close every object and require every property, else 400), reports `usage` with
`prompt_tokens_details.cached_tokens`, stops with `finish_reason: "length"` when the answer would
exceed `max_completion_tokens`/`max_tokens`, and answers `content_filter` for blocked text.
Fault switches: 429 with Retry-After, 5xx, invalid JSON, missing ids, length, content_filter.

POST /v1/embeddings answers for the models in `embedding_models` (a chat model gets a 400, an
unknown one a 404, like OpenAI): deterministic vectors from hashed word stems, so texts that
restate one problem with mostly the same words are close and unrelated texts are not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from tests.fakes import keyword_model
from tests.fakes.gemini import conform
from tests.fakes.server import FakeServer, Request, Response

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# responder(fake, system, user) -> answer object, chosen by the system prompt's `purpose:` line.
Responder = Callable[["FakeOpenAI", str, str], Any]


def classify_responder(fake: FakeOpenAI, system: str, user: str) -> Any:
    return keyword_model.answer_classify(system, user, fake.obey_injection)


def count_tokens(text: str) -> int:
    """A stand-in tokenizer: about four characters per token, like English text."""
    return max(1, (len(text) + 3) // 4)


def strict_schema_problem(schema: Any, path: str = "schema") -> str | None:
    """Why OpenAI would reject this schema in strict mode, or None when it would accept it."""
    if not isinstance(schema, dict):
        return f"{path} must be an object"
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "object" in kinds:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return f"{path}: 'additionalProperties' is required to be supplied and to be false"
        if sorted(schema.get("required") or []) != sorted(props):
            return f"{path}: 'required' is required to be supplied and to include every property"
        for name, sub in props.items():
            problem = strict_schema_problem(sub, f"{path}.properties.{name}")
            if problem:
                return problem
    if "array" in kinds:
        return strict_schema_problem(schema.get("items"), f"{path}.items")
    for name, sub in (schema.get("$defs") or {}).items():
        problem = strict_schema_problem(sub, f"$defs.{name}")
        if problem:
            return problem
    for word in ("default",):
        if word in schema:
            return f"{path}: '{word}' is not permitted"
    return None


def completion(
    content: str | None,
    model: str,
    *,
    finish_reason: str = "stop",
    prompt_tokens: int = 100,
    completion_tokens: int | None = None,
    cached_tokens: int = 0,
    refusal: str | None = None,
) -> dict[str, Any]:
    """A chat.completion object shaped like OpenAI's."""
    out = (
        completion_tokens
        if completion_tokens is not None
        else (count_tokens(content) if content else 0)
    )
    return {
        "id": f"chatcmpl-fake{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": out,
            "total_tokens": prompt_tokens + out,
            "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    }


def _text(message: dict[str, Any]) -> str:
    """A message's text, whether `content` is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


EMBED_SIZE = 256
_WORD = re.compile(r"[a-z][a-z0-9_]+")
_STOP = frozenset(
    re.findall(
        r"\w+",
        "the a an and or of to in on for with is are was were be it this that i my we our you"
        " how do does when what why can not no but from at by as have has",
    )
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def fake_vector(text: str) -> list[float]:
    """A unit vector of hashed word stems: same words, same direction; order does not matter."""
    vec = [0.0] * EMBED_SIZE
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        digest = hashlib.sha256(_stem(word).encode()).digest()
        slot = int.from_bytes(digest[:4], "little") % EMBED_SIZE
        vec[slot] += 1.0 if digest[4] % 2 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def error(status: int, message: str, kind: str, code: str | None = None) -> Response:
    return Response(
        status, {"error": {"message": message, "type": kind, "param": None, "code": code}}
    )


class FakeOpenAI(FakeServer):
    """Routes under /v1 like OpenAI, Ollama and vLLM; `base_url + "/v1"` is the client's base."""

    responders: ClassVar[dict[str, Responder]] = {"classify": classify_responder}

    def __init__(
        self,
        models: tuple[str, ...] = ("gemma3:latest", "llama3.2:latest"),
        *,
        embedding_models: tuple[str, ...] = (),
        api_key: str | None = None,
        obey_injection: bool = False,
        block_text: str | None = "SAFETY-TRIGGER",
        cache_prefix_tokens: int = 0,
        max_output_tokens: int | None = None,
    ) -> None:
        super().__init__()
        self.embedding_models = list(embedding_models)
        self.models = list(models) + self.embedding_models
        self.embedded: list[int] = []  # texts per /embeddings request, in order
        self.api_key = api_key  # when set, requests without this Bearer key get 401
        self.obey_injection = obey_injection  # a model that follows instructions in item text
        self.block_text = block_text  # any prompt containing it ends with content_filter
        self.cache_prefix_tokens = cache_prefix_tokens  # reported as cached on repeat prompts
        self.max_output_tokens = max_output_tokens  # the model's own output limit
        self._seen_prefixes: set[str] = set()
        self._switch_lock = threading.Lock()
        self._drop_ids = 0  # next N answers omit their last item
        self.route("GET", r"/v1/models", self._list_models)
        self.route("GET", r"/v1/models/(?P<model>.+)", self._get_model)
        self.route("POST", r"/v1/chat/completions", self._chat)
        self.route("POST", r"/v1/embeddings", self._embeddings)

    # -- fault switches ----------------------------------------------------------------
    def rate_limit(self, retry_after: str = "0", times: int = 1) -> None:
        resp = error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
        resp.headers["Retry-After"] = retry_after
        self.add_fault(resp, path=r"/chat/completions", times=times)

    def server_error(self, status: int = 500, times: int = 1) -> None:
        resp = error(
            status, "The server had an error while processing your request.", "server_error"
        )
        self.add_fault(resp, path=r"/chat/completions", times=times)

    def invalid_json(self, times: int = 1) -> None:
        body = completion('{"items": [{"id": "1", "category": ', self.models[0])
        self.add_fault(Response(200, body), path=r"/chat/completions", times=times)

    def truncate(self, times: int = 1) -> None:
        """The next answers stop mid-way with finish_reason "length"."""
        body = completion('{"items": [{"id": "1", "cat', self.models[0], finish_reason="length")
        self.add_fault(Response(200, body), path=r"/chat/completions", times=times)

    def content_filter(self, times: int = 1) -> None:
        body = completion(None, self.models[0], finish_reason="content_filter")
        self.add_fault(Response(200, body), path=r"/chat/completions", times=times)

    def drop_ids(self, times: int = 1) -> None:
        """The next `times` answers leave out their last item."""
        with self._switch_lock:
            self._drop_ids += times

    # -- routes ------------------------------------------------------------------------
    def _auth_problem(self, req: Request) -> Response | None:
        if self.api_key and req.headers.get("authorization") != f"Bearer {self.api_key}":
            return error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        return None

    def _model_entry(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "library"}

    def _list_models(self, req: Request, _m: re.Match[str]) -> Response:
        problem = self._auth_problem(req)
        if problem:
            return problem
        return Response(
            200, {"object": "list", "data": [self._model_entry(m) for m in self.models]}
        )

    def _get_model(self, req: Request, m: re.Match[str]) -> Response:
        name = m.group("model")
        if self._resolve(name) is None:
            return self._no_model(name)
        return Response(200, self._model_entry(name))

    def _resolve(self, name: str) -> str | None:
        for candidate in (name, f"{name}:latest"):
            if candidate in self.models:
                return candidate
        return None

    def _no_model(self, name: str) -> Response:
        msg = f"The model `{name}` does not exist or you do not have access to it."
        return error(404, msg, "invalid_request_error", "model_not_found")

    def _chat(self, req: Request, _m: re.Match[str]) -> Response:
        problem = self._auth_problem(req)
        if problem:
            return problem
        body = req.json()
        model = self._resolve(str(body.get("model")))
        if model is None:
            return self._no_model(str(body.get("model")))
        messages = body.get("messages") or []
        if not messages:
            return error(
                400, "'messages' must contain at least one message", "invalid_request_error"
            )
        problem_text = self._format_problem(body.get("response_format"))
        if problem_text:
            return error(400, problem_text, "invalid_request_error")
        system = "\n".join(_text(m) for m in messages if m.get("role") in ("system", "developer"))
        user = "\n".join(_text(m) for m in messages if m.get("role") == "user")
        prompt_tokens = count_tokens(system + user)
        cached = self._cached(system)
        if self.block_text and self.block_text in user:
            return Response(
                200,
                completion(
                    None,
                    model,
                    finish_reason="content_filter",
                    prompt_tokens=prompt_tokens,
                    cached_tokens=cached,
                ),
            )
        answer = self._answer(system, user, body["response_format"]["json_schema"]["schema"])
        text = json.dumps(answer)
        limit = (
            body.get("max_completion_tokens") or body.get("max_tokens") or self.max_output_tokens
        )
        finish = "stop"
        if limit and count_tokens(text) > int(limit):
            text, finish = text[: int(limit) * 4], "length"
        return Response(
            200,
            completion(
                text, model, finish_reason=finish, prompt_tokens=prompt_tokens, cached_tokens=cached
            ),
        )

    def _embeddings(self, req: Request, _m: re.Match[str]) -> Response:
        problem = self._auth_problem(req)
        if problem:
            return problem
        body = req.json()
        name = str(body.get("model"))
        model = self._resolve(name)
        if model is None:
            return self._no_model(name)
        if model not in self.embedding_models:
            return error(
                400, f"model `{name}` does not support embeddings", "invalid_request_error"
            )
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if (
            not isinstance(texts, list)
            or not texts
            or any(not isinstance(t, str) or not t for t in texts)
        ):
            return error(
                400,
                "'input' must be a non-empty string or list of strings",
                "invalid_request_error",
            )
        with self._switch_lock:
            self.embedded.append(len(texts))
        data = [
            {"object": "embedding", "index": n, "embedding": fake_vector(t)}
            for n, t in enumerate(texts)
        ]
        tokens = sum(count_tokens(t) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return Response(200, {"object": "list", "data": data, "model": model, "usage": usage})

    def _format_problem(self, fmt: Any) -> str | None:
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
            return "this fake only answers with response_format type json_schema"
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not NAME_RE.match(str(spec.get("name", ""))):
            return "Invalid 'response_format.json_schema.name': must match ^[a-zA-Z0-9_-]{1,64}$"
        if spec.get("strict"):
            problem = strict_schema_problem(spec.get("schema"))
            if problem:
                return f"Invalid schema for response_format '{spec['name']}': {problem}"
        return None

    def _cached(self, system: str) -> int:
        """Automatic prefix caching: a repeated system prompt is billed as cached."""
        if not self.cache_prefix_tokens:
            return 0
        with self._switch_lock:
            hit = system in self._seen_prefixes
            self._seen_prefixes.add(system)
        return min(self.cache_prefix_tokens, count_tokens(system)) if hit else 0

    def _answer(self, system: str, user: str, schema: dict[str, Any]) -> Any:
        """The model's answer: the responder for the prompt's `purpose:`, shaped by the schema."""
        purpose = keyword_model.purpose_of(system, user)
        responder = self.responders.get(purpose, lambda _fake, _s, _u: {})
        answer = responder(self, system, user)
        with self._switch_lock:
            drop, self._drop_ids = self._drop_ids > 0, max(0, self._drop_ids - 1)
        if drop and isinstance(answer, dict) and answer.get("items"):
            answer = {**answer, "items": answer["items"][:-1]}
        return conform(answer, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible API until killed.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--key", default=None, help="Bearer key to require (default: none)")
    parser.add_argument("--obey-injection", action="store_true")
    args = parser.parse_args()
    # As `python -m` this file is `__main__`: copy the themes/duplicates answers that
    # tests.fakes.themes_model registers on the importable module's class.
    from tests.fakes import themes_model

    FakeOpenAI.responders.update(themes_model.FakeOpenAI.responders)
    fake = FakeOpenAI(api_key=args.key, obey_injection=args.obey_injection)
    fake.port = args.port
    fake.start()
    print(fake.base_url, flush=True)
    key = f" OPENAI_API_KEY={args.key}" if args.key else ""
    print(f"export TRIAGE_LLM__OPENAI__BASE_URL={fake.base_url}/v1{key}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
