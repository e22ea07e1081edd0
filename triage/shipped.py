"""Where the files kept at the top of the source tree are: alembic/ and config.example.toml.

A wheel (`pip install .`) carries them inside the package as triage/_data/ (see setup.py and
[tool.setuptools.package-dir] in pyproject.toml); a checkout or an editable install
(`pip install -e .`) reads them from the project root, next to triage/.
"""

from __future__ import annotations

from pathlib import Path

from triage.errors import TriageError

PACKAGE = Path(__file__).resolve().parent


def _root() -> Path:
    for root in (PACKAGE / "_data", PACKAGE.parent):
        # Both, so that site-packages (next to an installed triage/) never passes for a checkout.
        if (root / "config.example.toml").is_file() and (root / "alembic" / "env.py").is_file():
            return root
    raise TriageError(
        f"triage is installed without its migrations and example config (looked in"
        f" {PACKAGE / '_data'} and {PACKAGE.parent}): reinstall it with `pip install`"
    )


def example_config() -> Path:
    return _root() / "config.example.toml"


def migrations() -> Path:
    """The alembic script directory (env.py, script.py.mako, versions/)."""
    return _root() / "alembic"
