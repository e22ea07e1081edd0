"""The OpenAI-compatible HTTP client against the fake server: retries, rate limits, errors."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator

import pytest

from tests.fakes.openai import FakeOpenAI, completion, error
from tests.fakes.server import Response
from triage.errors import ConfigError, ProviderError, QuotaExhausted
from triage.providers.openai.http import OpenAIClient, TransientError, model_available


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test-123") as server:
        yield server


def make_client(fake: FakeOpenAI, sleeps: list[float], **kw: object) -> OpenAIClient:
    args: dict[str, object] = {"api_key": "sk-test-123", "max_retries": 3, "timeout": 10.0}
    args.update(kw)
    return OpenAIClient(fake.base_url + "/v1", sleep=sleeps.append, **args)  # type: ignore[arg-type]


def canned(fake: FakeOpenAI, **kw: object) -> None:
    """Answer the next chat call with a fixed completion (for client-only tests)."""
    fake.add_fault(
        Response(200, completion('{"items": []}', "gemma3:latest", **kw)),  # type: ignore[arg-type]
        path="/chat/completions",
    )


PAYLOAD = {"model": "gemma3", "messages": [{"role": "user", "content": "hi"}]}


def test_bearer_key_is_sent_and_models_listed(fake: FakeOpenAI) -> None:
    client = make_client(fake, [])
    assert client.models() == ["gemma3:latest", "llama3.2:latest"]
    assert fake.requests[-1].headers["authorization"] == "Bearer sk-test-123"


def test_no_key_sends_no_authorization_header() -> None:
    with FakeOpenAI() as server:
        client = OpenAIClient(server.base_url + "/v1")
        client.models()
        assert "authorization" not in server.requests[-1].headers


def test_wrong_key_is_a_config_error_without_the_key(fake: FakeOpenAI) -> None:
    client = make_client(fake, [], api_key="sk-wrong-999")
    with pytest.raises(ConfigError) as err:
        client.models()
    assert "OPENAI_API_KEY" in str(err.value)
    assert "sk-wrong-999" not in str(err.value)


def test_429_honours_retry_after_then_succeeds(fake: FakeOpenAI) -> None:
    sleeps: list[float] = []
    fake.rate_limit(retry_after="7", times=2)
    canned(fake, prompt_tokens=50, cached_tokens=20)
    reply = make_client(fake, sleeps).chat(PAYLOAD)
    assert sleeps == [7.0, 7.0]
    assert reply.content == '{"items": []}'
    assert (reply.prompt_tokens, reply.cached_tokens) == (50, 20)
    assert len(fake.requests_to("/chat/completions")) == 3


def test_retry_after_ms_is_preferred(fake: FakeOpenAI) -> None:
    sleeps: list[float] = []
    resp = error(429, "slow down", "tokens", "rate_limit_exceeded")
    resp.headers.update({"retry-after-ms": "1500", "Retry-After": "2"})
    fake.add_fault(resp, path="/chat/completions")
    canned(fake)
    make_client(fake, sleeps).chat(PAYLOAD)
    assert sleeps == [1.5]


def test_5xx_backs_off_exponentially_and_gives_up(fake: FakeOpenAI) -> None:
    sleeps: list[float] = []
    fake.server_error(status=502, times=10)
    with pytest.raises(TransientError, match="502"):
        make_client(fake, sleeps, max_retries=3).chat(PAYLOAD)
    assert len(fake.requests_to("/chat/completions")) == 4  # bounded: 1 + max_retries
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[2]  # backoff grows


def test_long_retry_after_stops_cleanly(fake: FakeOpenAI) -> None:
    fake.rate_limit(retry_after="3600")
    with pytest.raises(QuotaExhausted, match="rate limiting"):
        make_client(fake, []).chat(PAYLOAD)


def test_unreachable_server_is_retried_then_reported() -> None:
    sleeps: list[float] = []
    client = OpenAIClient("http://127.0.0.1:9/v1", max_retries=2, timeout=2.0, sleep=sleeps.append)
    with pytest.raises(TransientError, match="ConnectError"):
        client.models()
    assert len(sleeps) == 2


def test_unknown_model_lists_close_names(fake: FakeOpenAI) -> None:
    with pytest.raises(ConfigError) as err:
        make_client(fake, []).chat({**PAYLOAD, "model": "gemma"})
    assert "gemma3:latest" in str(err.value)
    assert "[llm.openai] model" in str(err.value)


def test_other_4xx_is_a_provider_error_with_the_server_message(fake: FakeOpenAI) -> None:
    fake.add_fault(
        error(400, "context length exceeded", "invalid_request_error"), path="/chat/completions"
    )
    with pytest.raises(ProviderError, match="context length exceeded"):
        make_client(fake, []).chat(PAYLOAD)


def test_ollama_latest_tag_counts_as_available() -> None:
    assert model_available("gemma3", ["gemma3:latest"])
    assert not model_available("gemma3:27b", ["gemma3:latest"])


def test_retry_after_as_an_http_date(fake: FakeOpenAI) -> None:
    sleeps: list[float] = []
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake.rate_limit(retry_after=when)
    fake.rate_limit(retry_after="soon")  # unreadable: plain backoff instead
    canned(fake)
    make_client(fake, sleeps).chat(PAYLOAD)
    assert 20 < sleeps[0] <= 30
    assert 0 < sleeps[1] <= 2
