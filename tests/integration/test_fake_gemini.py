"""The fake Gemini API itself: shapes the real client relies on, and its extension points."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from tests.fakes.gemini import DEFAULT_KEY, FakeGemini, Prompt


@pytest.fixture
def fake(fake_gemini: FakeGemini) -> FakeGemini:
    """The module's fake Gemini (tests/conftest.py), reset for each test."""
    return fake_gemini


def client(fake: FakeGemini, version: str = "v1beta", key: str = DEFAULT_KEY) -> genai.Client:
    http = types.HttpOptions(base_url=fake.base_url, api_version=version, timeout=10_000)
    return genai.Client(api_key=key, http_options=http)


def test_v1_and_v1beta_paths_and_model_listing(fake: FakeGemini) -> None:
    for version in ("v1", "v1beta"):
        c = client(fake, version)
        assert c.models.get(model="gemini-3.8-flash").output_token_limit
    names = [m.name for m in c.models.list(config={"page_size": 2})]  # pages of two
    assert "models/gemini-3.8-flash" in names and len(names) == len(fake.models)
    assert len(fake.requests_to("/models$", "GET")) == (len(fake.models) + 1) // 2
    assert {r.path.split("/")[1] for r in fake.requests} == {"v1", "v1beta"}


def test_bad_or_missing_key_gets_the_real_error_shape(fake: FakeGemini) -> None:
    c = client(fake, key="nope")
    with pytest.raises(errors.ClientError) as bad:
        c.models.get(model="gemini-3.8-flash")
    assert bad.value.code == 400 and bad.value.status == "INVALID_ARGUMENT"
    assert bad.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_response_json_schema_is_honoured_too(fake: FakeGemini) -> None:
    def echo(prompt: Prompt, schema: Any) -> dict[str, Any]:
        return {"theme": "quota", "extra": "not in the schema", "user": prompt.user}

    FakeGemini.responders["echo-test"] = echo
    try:
        schema = {
            "type": "object",
            "properties": {"theme": {"type": "string"}, "user": {"type": "string"}},
            "required": ["theme"],
        }
        c = client(fake)
        resp = c.models.generate_content(
            model="gemini-3.8-flash",
            contents="hello there",
            config=types.GenerateContentConfig(
                system_instruction="purpose: echo-test",
                response_mime_type="application/json",
                response_json_schema=schema,
            ),
        )
    finally:
        del FakeGemini.responders["echo-test"]
    assert json.loads(resp.text or "") == {"theme": "quota", "user": "hello there"}
    body = fake.requests_to(":generateContent")[0].json()
    assert body["generationConfig"]["responseJsonSchema"] == schema


def test_usage_counts_about_four_characters_per_token_and_cached_tokens(
    fake: FakeGemini,
) -> None:
    fake.min_cache_tokens = 10
    c = client(fake)
    system = "purpose: none\n" + "x" * 400
    cache = c.caches.create(
        model="gemini-3.8-flash",
        config=types.CreateCachedContentConfig(system_instruction=system, ttl="60s"),
    )
    assert cache.usage_metadata is not None and cache.usage_metadata.total_token_count == 104
    resp = c.models.generate_content(
        model="gemini-3.8-flash",
        contents="y" * 40,
        config=types.GenerateContentConfig(cached_content=cache.name),
    )
    usage = resp.usage_metadata
    assert usage is not None
    assert usage.cached_content_token_count == 104 and usage.prompt_token_count == 114
    assert c.models.count_tokens(model="gemini-3.8-flash", contents="z" * 40).total_tokens == 10
    with pytest.raises(errors.ClientError, match="system_instruction"):
        c.models.generate_content(
            model="gemini-3.8-flash",
            contents="y",
            config=types.GenerateContentConfig(cached_content=cache.name, system_instruction="s"),
        )
    c.caches.delete(name=cache.name or "")
    with pytest.raises(errors.ClientError) as gone:
        c.models.generate_content(
            model="gemini-3.8-flash",
            contents="y",
            config=types.GenerateContentConfig(cached_content=cache.name),
        )
    assert gone.value.code == 403


def test_embed_content_single_and_batched_agree(fake: FakeGemini) -> None:
    c = client(fake)
    one = fake.base_url + "/v1beta/models/gemini-embedding-001:embedContent"
    req = urllib.request.Request(
        one,
        data=json.dumps({"content": {"parts": [{"text": "Quota exceeded"}]}}).encode(),
        headers={"x-goog-api-key": DEFAULT_KEY, "content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        single = json.load(resp)["embedding"]["values"]
    batched = c.models.embed_content(model="gemini-embedding-001", contents=["quota EXCEEDED"])
    assert batched.embeddings is not None and batched.embeddings[0].values == single
    assert sum(v * v for v in single) == pytest.approx(1.0)
