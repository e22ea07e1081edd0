"""The top level the project promises: alembic/ and config.example.toml at the root."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from triage import shipped
from triage.config import Config
from triage.errors import TriageError

ROOT = Path(__file__).resolve().parents[2]


def test_import_alembic_from_the_root_is_the_library() -> None:
    """./alembic holds migration scripts; it must never shadow the library it is named after."""
    assert not (ROOT / "alembic" / "__init__.py").exists()
    # `python -c` puts the working directory first on sys.path, as running from the root does.
    out = subprocess.run(
        [sys.executable, "-c", "import alembic, alembic.command; print(alembic.__file__)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out, "alembic resolved to a namespace package (the ./alembic directory)"
    assert not Path(out).resolve().is_relative_to(ROOT / "alembic")


def _key_problems(model: type[BaseModel], table: dict[str, Any], where: str = "") -> list[str]:
    problems = [f"unknown key {where}{k}" for k in sorted(table.keys() - model.model_fields)]
    problems += [f"missing key {where}{k}" for k in sorted(model.model_fields.keys() - table)]
    for name in sorted(model.model_fields.keys() & table.keys()):
        annotation = model.model_fields[name].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if isinstance(table[name], dict):
                problems += _key_problems(annotation, table[name], f"{where}{name}.")
            else:
                problems.append(f"{where}{name} should be a [{where}{name}] table")
    return problems


def test_example_config_is_a_regular_file_whose_keys_are_the_config_models() -> None:
    """Every config key is documented in config.example.toml, and nothing else is there."""
    example = ROOT / "config.example.toml"
    assert example.is_file()
    assert not example.is_symlink(), "a symlink breaks on Windows checkouts and in archives"
    data = tomllib.loads(example.read_text(encoding="utf-8"))
    problems = _key_problems(Config, data)
    assert not problems, "config.example.toml must document exactly the keys of triage/config.py"


def test_key_comparison_names_unknown_and_missing_keys() -> None:
    data = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    del data["llm"]["gemini"]["model"]
    data["slack"]["chanel"] = "#x"
    assert set(_key_problems(Config, data)) == {
        "unknown key slack.chanel",
        "missing key llm.gemini.model",
    }


def test_checkout_finds_the_files_at_the_root() -> None:
    assert shipped.migrations() == ROOT / "alembic"
    assert shipped.example_config() == ROOT / "config.example.toml"


def test_installed_copy_wins_and_site_packages_never_passes_for_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site-packages" / "triage"
    (package / "_data" / "alembic").mkdir(parents=True)
    # The alembic library next to an installed triage/ is no script directory.
    (package.parent / "alembic").mkdir()
    (package.parent / "alembic" / "env.py").write_text("")
    monkeypatch.setattr(shipped, "PACKAGE", package)
    with pytest.raises(TriageError, match="without its migrations"):
        shipped.migrations()
    (package / "_data" / "alembic" / "env.py").write_text("")
    (package / "_data" / "config.example.toml").write_text("")
    assert shipped.migrations() == package / "_data" / "alembic"
    assert shipped.example_config() == package / "_data" / "config.example.toml"
