"""The fake Gemini API's stateful resources: cachedContents and Batch-Mode jobs.

Mixed into FakeGemini (tests/fakes/gemini.py), whose state (`caches`, `batches`, switches and
`generate`) they use.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.server import Request, Response

TERMINAL = {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED"}


def count_tokens(text: str) -> int:
    """A stand-in tokenizer: about four characters per token, like English text."""
    return (len(text) + 3) // 4


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def api_error(code: int, status: str, message: str, details: list[Any] | None = None) -> Response:
    """The google.rpc.Status error envelope every Google API answers with."""
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return Response(code, {"error": err})


def texts_of(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    return "\n".join(str(p.get("text", "")) for p in content.get("parts") or [] if "text" in p)


class CachesMixin:
    """cachedContents create/get/list/update/delete, and their use by generateContent."""

    def _model_missing(self, model: str, v: str, method: str = "generateContent") -> Response:
        raise NotImplementedError

    def _use_cache(
        self, name: str, model: str, body: dict[str, Any]
    ) -> tuple[Response | None, dict[str, Any] | None]:
        with self._state_lock:
            cache = self.caches.get(name.rsplit("/", 1)[-1])
        if cache is None or cache["_expires"] < time.time():
            return api_error(
                403, "PERMISSION_DENIED", "CachedContent not found (or permission denied)"
            ), None
        if body.get("systemInstruction") or body.get("tools") or body.get("toolConfig"):
            return api_error(
                400,
                "INVALID_ARGUMENT",
                "CachedContent can not be used with GenerateContent request setting"
                " system_instruction, tools or tool_config.\n\nProposed fix: move those values"
                " to CachedContent from GenerateContent request.",
            ), None
        if cache["model"] != f"models/{model}":
            return api_error(
                400,
                "INVALID_ARGUMENT",
                f"Model used by GenerateContent request (models/{model}) and CachedContent"
                f" ({cache['model']}) has to be the same.",
            ), None
        return None, cache

    def _public(self, cache: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in cache.items() if not k.startswith("_")}

    def _cache_create(self, req: Request, m: re.Match[str]) -> Response:
        if self.cache_error:
            return api_error(self.cache_error, "INTERNAL", "An internal error has occurred.")
        body = req.json() or {}
        model = str(body.get("model", "")).removeprefix("models/")
        if model not in self.models:
            return self._model_missing(model, m["v"], "createCachedContent")
        system = texts_of(body.get("systemInstruction"))
        user = "\n".join(texts_of(c) for c in body.get("contents") or [])
        tokens = count_tokens(system) + count_tokens(user)
        if tokens < self.min_cache_tokens:
            return api_error(
                400,
                "INVALID_ARGUMENT",
                f"Cached content is too small. total_token_count={tokens},"
                f" min_total_token_count={self.min_cache_tokens}",
            )
        ttl = float(str(body.get("ttl", "3600s")).rstrip("s"))
        cid = uuid.uuid4().hex[:12]
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        cache = {
            "name": f"cachedContents/{cid}",
            "model": f"models/{model}",
            "displayName": body.get("displayName", ""),
            "createTime": now_iso(),
            "updateTime": now_iso(),
            "expireTime": expires.isoformat().replace("+00:00", "Z"),
            "usageMetadata": {"totalTokenCount": tokens},
            "_system": system,
            "_user": user,
            "_expires": time.time() + ttl,
        }
        with self._state_lock:
            self.caches[cid] = cache
        return Response(200, self._public(cache))

    def _cache_list(self, req: Request, m: re.Match[str]) -> Response:
        with self._state_lock:
            return Response(
                200, {"cachedContents": [self._public(c) for c in self.caches.values()]}
            )

    def _cache_get(self, req: Request, m: re.Match[str]) -> Response:
        with self._state_lock:
            cache = self.caches.get(m["id"])
        if cache is None:
            return api_error(403, "PERMISSION_DENIED", "CachedContent not found")
        return Response(200, self._public(cache))

    def _cache_update(self, req: Request, m: re.Match[str]) -> Response:
        with self._state_lock:
            cache = self.caches.get(m["id"])
            if cache is None:
                return api_error(403, "PERMISSION_DENIED", "CachedContent not found")
            ttl = float(str((req.json() or {}).get("ttl", "3600s")).rstrip("s"))
            cache["_expires"] = time.time() + ttl
            cache["updateTime"] = now_iso()
            return Response(200, self._public(cache))

    def _cache_delete(self, req: Request, m: re.Match[str]) -> Response:
        with self._state_lock:
            if self.caches.pop(m["id"], None) is None:
                return api_error(403, "PERMISSION_DENIED", "CachedContent not found")
        return Response(200, {})


class BatchesMixin:
    """batchGenerateContent and batches get/list/cancel/delete (operations, as the API has it)."""

    def _model_missing(self, model: str, v: str, method: str = "generateContent") -> Response:
        raise NotImplementedError

    def generate(self, model: str, body: dict[str, Any], v: str = "v1beta") -> tuple[int, Any]:
        raise NotImplementedError

    def _operation(self, job: dict[str, Any]) -> dict[str, Any]:
        meta = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": job["model"],
            "displayName": job["displayName"],
            "createTime": job["createTime"],
            "updateTime": job["updateTime"],
            "batchStats": job["stats"],
            "state": job["state"],
            "name": job["name"],
        }
        op: dict[str, Any] = {"name": job["name"], "metadata": meta}
        if job["state"] in TERMINAL:
            op["done"] = True
            meta["endTime"] = job["updateTime"]
            if job.get("error"):
                op["error"] = job["error"]
            elif job.get("output") is not None:
                output = {"inlinedResponses": {"inlinedResponses": job["output"]}}
                meta["output"] = output
                op["response"] = {
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1main."
                    "GenerateContentBatchOutput",
                    **output,
                }
        return op

    def _batch_create(self, req: Request, m: re.Match[str]) -> Response:
        if m["model"] not in self.models:
            return self._model_missing(m["model"], m["v"], "batchGenerateContent")
        if len(req.body) > self.max_batch_bytes:
            return api_error(
                400,
                "INVALID_ARGUMENT",
                f"Request payload size exceeds the limit: {self.max_batch_bytes} bytes.",
            )
        batch = (req.json() or {}).get("batch") or {}
        requests = ((batch.get("inputConfig") or {}).get("requests") or {}).get("requests") or []
        bid = uuid.uuid4().hex[:16]
        job = {
            "name": f"batches/{bid}",
            "model": f"models/{m['model']}",
            "displayName": batch.get("displayName", ""),
            "createTime": now_iso(),
            "updateTime": now_iso(),
            "state": "BATCH_STATE_PENDING",
            "stats": {
                "requestCount": str(len(requests)),
                "pendingRequestCount": str(len(requests)),
            },
            "requests": requests,
            "polls": 0,
        }
        with self._state_lock:
            self.batches[bid] = job
            op = self._operation(job)
            if getattr(self, "batch_nameless", False):
                op.pop("name", None)
                op["metadata"].pop("name", None)
            return Response(200, op)

    def complete_batch(self, bid: str) -> None:
        """Run every request of a job now (also happens after `batch_polls_to_finish` polls)."""
        with self._state_lock:
            job = self.batches[bid]
            if job["state"] in TERMINAL:
                return
            job["updateTime"] = now_iso()
            if self.fail_batches:
                job["state"] = "BATCH_STATE_FAILED"
                job["error"] = {"code": 13, "message": "Batch job failed: internal error."}
                return
            model = job["model"].removeprefix("models/")
            output, ok = [], 0
            for entry in job["requests"]:
                request = entry.get("request") or {}
                item: dict[str, Any] = {}
                if entry.get("metadata") is not None:
                    item["metadata"] = entry["metadata"]
                text = json.dumps(request.get("contents"))
                if self.batch_error_marker and self.batch_error_marker in text:
                    item["error"] = {"code": 3, "message": "Request contains an invalid argument."}
                else:
                    status, body = self.generate(model, request)
                    if status == 200:
                        item["response"] = body
                        ok += 1
                    else:
                        item["error"] = {"code": status, "message": body["error"]["message"]}
                output.append(item)
            job["state"] = "BATCH_STATE_SUCCEEDED"
            job["output"] = output
            job["stats"] = {
                "requestCount": str(len(output)),
                "successfulRequestCount": str(ok),
                "failedRequestCount": str(len(output) - ok),
            }

    def _batch_get(self, req: Request, m: re.Match[str]) -> Response:
        with self._state_lock:
            job = self.batches.get(m["id"])
            if job is None:
                return api_error(404, "NOT_FOUND", f"Batch batches/{m['id']} not found.")
            job["polls"] += 1
            if job["state"] == "BATCH_STATE_PENDING" and job["polls"] < self.batch_polls_to_finish:
                job["state"] = "BATCH_STATE_RUNNING"
            if job["polls"] >= self.batch_polls_to_finish:
                self.complete_batch(m["id"])
            return Response(200, self._operation(job))

    def _batch_list(self, req: Request, m: re.Match[str]) -> Response:
        with self._state_lock:
            ops = [self._operation(j) for j in self.batches.values()]
        return Response(200, {"operations": ops})

    def _batch_cancel(self, req: Request, m: re.Match[str]) -> Response:
        with self._state_lock:
            job = self.batches.get(m["id"])
            if job is None:
                return api_error(404, "NOT_FOUND", f"Batch batches/{m['id']} not found.")
            if job["state"] not in TERMINAL:
                job["state"] = "BATCH_STATE_CANCELLED"
        return Response(200, {})

    def _batch_delete(self, req: Request, m: re.Match[str]) -> Response:
        with self._state_lock:
            self.batches.pop(m["id"], None)
        return Response(200, {})
