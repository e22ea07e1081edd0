from __future__ import annotations

import pytest

from triage import logs


def test_known_secrets_and_token_shapes_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", "json", ["s3cr3t-value"])
    log = logs.get_logger()
    log.info(
        "calling",
        url="https://api/x?key=abc123&site=so",
        token="s3cr3t-value",
        note="ghp_abcdefghijklmnopqrstuvwxyz0123",
    )
    err = capsys.readouterr().err
    assert "s3cr3t-value" not in err
    assert "abc123" not in err
    assert "ghp_abcdefghijklmnopqrstuvwxyz0123" not in err
    assert "site=so" in err and "calling" in err
