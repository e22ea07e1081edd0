from __future__ import annotations

from pathlib import Path

import pytest

from triage.config import Config, Secrets, load_config
from triage.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
EXAMPLE_SOURCES = [("github", "repos"), ("github", "since"), ("stackexchange", "tags")]
EXAMPLE_SOURCES += [("stackexchange", "since")]


def test_example_documents_every_key_with_its_default() -> None:
    import tomllib

    data = tomllib.loads(EXAMPLE.read_text())
    example = Config.model_validate(data).model_dump()
    # The example sources (one repository, one tag, from 90 days back) are not defaults.
    for section, key in EXAMPLE_SOURCES:
        assert example[section].pop(key) != Config().model_dump()[section][key]
    defaults = Config().model_dump()
    for section, key in EXAMPLE_SOURCES:
        defaults[section].pop(key)
    assert example == defaults

    def keys(model: dict[str, object], prefix: str = "") -> set[str]:
        out = set()
        for k, v in model.items():
            out.add(prefix + k)
            if isinstance(v, dict) and k not in ("categories", "map"):
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(Config().model_dump()) <= keys(data)


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[github]\nrepoz = ["a/b"]\n')
    with pytest.raises(ConfigError, match=r"unknown config key 'github\.repoz'"):
        load_config(path, env={})


def test_unknown_section_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[githb]\nrepos = []\n")
    with pytest.raises(ConfigError, match="'githb'"):
        load_config(path, env={})


def test_malformed_toml(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[github\nrepos = 1\n")
    with pytest.raises(ConfigError, match="malformed TOML"):
        load_config(path, env={})


def test_bad_value_names_key(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[labels]\nmin_confidence = "high"\n')
    with pytest.raises(ConfigError, match=r"labels\.min_confidence"):
        load_config(path, env={})


def test_env_overrides_file_and_nests(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[database]\nurl = "sqlite:///file.db"\n[github]\nrepos = ["a/b"]\n')
    cfg = load_config(
        path,
        env={
            "TRIAGE_DATABASE__URL": "sqlite:///env.db",
            "TRIAGE_LLM__GEMINI__BASE_URL": "http://127.0.0.1:9",
            "TRIAGE_GITHUB__REPOS": '["x/y", "z/*"]',
            "TRIAGE_LABELS__APPLY": "true",
            "TRIAGE_CONFIG": "ignored-here",
        },
    )
    assert cfg.database.url == "sqlite:///env.db"
    assert cfg.llm.gemini.base_url == "http://127.0.0.1:9"
    assert cfg.github.repos == ["x/y", "z/*"]
    assert cfg.labels.apply is True


def test_unknown_env_key_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./triage.toml: defaults plus the environment
    with pytest.raises(ConfigError, match=r"github\.token"):
        load_config(None, env={"TRIAGE_GITHUB__TOKEN": "x"})


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_secrets_only_from_env_and_hidden() -> None:
    s = Secrets.from_env({"GOOGLE_API_KEY": "AIzaSecret", "GITHUB_TOKEN": "ghp_x"})
    assert s.gemini_api_key is not None and s.gemini_api_key.get_secret_value() == "AIzaSecret"
    assert "AIzaSecret" not in repr(s) and "ghp_x" not in str(s)
    # GEMINI_API_KEY wins over GOOGLE_API_KEY
    s2 = Secrets.from_env({"GOOGLE_API_KEY": "a", "GEMINI_API_KEY": "b"})
    assert s2.gemini_api_key is not None and s2.gemini_api_key.get_secret_value() == "b"


def test_secrets_cannot_be_set_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[github]\ntoken = "ghp_in_file"\n')
    with pytest.raises(ConfigError, match=r"github\.token"):
        load_config(path, env={})


@pytest.mark.parametrize(
    "name", ["TRIAGE_GITHUB__API_URL", "TRIAGE_STACKEXCHANGE__API_URL", "TRIAGE_SLACK__BASE_URL"]
)
@pytest.mark.parametrize("value", ["", "api.github.com", "ftp://host/x", "/2.3"])
def test_an_api_url_that_is_not_an_http_url_is_a_config_error_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./triage.toml: defaults plus the environment
    key = name.removeprefix("TRIAGE_").replace("__", ".").lower()
    with pytest.raises(ConfigError) as err:
        load_config(None, env={name: value})
    message = str(err.value)
    assert f"'{key}' in environment variable {name}" in message
    assert "http(s) URL" in message and "\n" not in message


def test_api_urls_keep_enterprise_paths_and_lose_stray_spaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, env={"TRIAGE_GITHUB__API_URL": " https://ghe.example.com/api/v3 "})
    assert cfg.github.api_url == "https://ghe.example.com/api/v3"


def test_a_bad_value_in_the_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[stackexchange]\napi_url = ""\n')
    with pytest.raises(ConfigError, match=rf"'stackexchange\.api_url' in {path}: expected"):
        load_config(path, env={"TRIAGE_GITHUB__REPOS": '["o/r"]'})


def test_list_overrides_take_commas_as_well_as_json() -> None:
    cfg = load_config(
        None,
        env={
            "TRIAGE_GITHUB__REPOS": "octo/demo, octo/other",
            "TRIAGE_STACKEXCHANGE__TAGS": '["google-gemini"]',
            "TRIAGE_DIGEST__HIGH_PRIORITY": "critical",
        },
    )
    assert cfg.github.repos == ["octo/demo", "octo/other"]
    assert cfg.stackexchange.tags == ["google-gemini"]
    assert cfg.digest.high_priority == ["critical"]
