"""What a Gemini call may raise besides an API error: transport failures and a cut-off body."""

from __future__ import annotations

import json

import httpx
from google.genai import errors as genai_errors

try:  # google-genai sends through its bundled `httpx2` when installed, not `httpx`
    import httpx2

    HTTP_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx2.HTTPError)
except ImportError:  # pragma: no cover - depends on the google-genai build
    HTTP_ERRORS = (httpx.HTTPError,)
# What an SDK call that is not a generation may raise: an API answer, or the transport failing.
REQUEST_ERRORS: tuple[type[Exception], ...] = (genai_errors.APIError, *HTTP_ERRORS)
CALL_ERRORS: tuple[type[Exception], ...] = (
    genai_errors.APIError,
    json.JSONDecodeError,
    *HTTP_ERRORS,
)
