from __future__ import annotations

import pytest

from triage.db.engine import make_engine
from triage.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "database.url is empty: set it, e.g. sqlite:///triage.db"),
        (" ", "database.url is empty: set it, e.g. sqlite:///triage.db"),
        ("triage.db", "database.url 'triage.db' is not a database URL: e.g. sqlite:///triage.db"),
        ("pg//me:pw@host", "database.url <unparseable URL> is not a database URL"),
    ],
)
def test_an_unusable_database_url_is_a_config_error_that_shows_no_password(
    url: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        make_engine(url)
    assert str(err.value).startswith(message) and "pw" not in str(err.value)
