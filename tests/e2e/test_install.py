"""Every way of installing triage gives `triage init` and `triage db upgrade` what they need.

alembic/ and config.example.toml live at the top of the source tree; the build ships them in
the package. Nothing here reaches the network: the wheel is built without build isolation by
the setuptools of this environment, and the fresh venv borrows this environment's packages.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import triage
from triage.db import migrate
from triage.db.engine import make_engine

from .cli import triage_env

ROOT = Path(__file__).resolve().parents[2]
# What the build must not see: a stale build/ would put deleted files back into the wheel.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "triage.db*"
)


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=triage_env({"PIP_DISABLE_PIP_VERSION_CHECK": "1", **(env or {})}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _head() -> str | None:
    return migrate.head_revision(make_engine("sqlite://"))


def _shipped_files() -> set[str]:
    """What the wheel must carry under triage/_data/."""
    scripts = [ROOT / "alembic" / "env.py", ROOT / "alembic" / "script.py.mako"]
    scripts += sorted((ROOT / "alembic" / "versions").glob("*.py"))
    return {"config.example.toml", *(p.relative_to(ROOT).as_posix() for p in scripts)}


def _init_and_upgrade(triage_cmd: list[str | Path], tmp_path: Path) -> None:
    """`triage init` in an empty directory, then `triage db upgrade` of a new database."""
    work = tmp_path / "empty"
    work.mkdir()
    out = _run(*triage_cmd, "init", cwd=work)
    assert "config: wrote triage.toml" in out
    assert f"schema at {_head()}" in out
    assert (work / "triage.toml").read_bytes() == (ROOT / "config.example.toml").read_bytes()
    other = tmp_path / "other.db"
    out = _run(
        *triage_cmd, "db", "upgrade", cwd=work, env={"TRIAGE_DATABASE__URL": f"sqlite:///{other}"}
    )
    assert f"schema at {_head()}" in out
    out = _run(*triage_cmd, "db", "current", cwd=work)
    assert f"database: {_head()}  code: {_head()}" in out


@pytest.mark.slow
def test_wheel_from_sdist_in_a_fresh_venv_runs_init_and_db_upgrade(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    dist = tmp_path / "dist"
    # sdist, then the wheel from the unpacked sdist: what `pip install triage-*.tar.gz` does.
    build_sdist = (
        "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
    )
    sdist = dist / _run(sys.executable, "-c", build_sdist, dist, cwd=src).split()[-1]
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    unpacked = next((tmp_path / "unpacked").iterdir())
    pip = [sys.executable, "-m", "pip"]
    _run(
        *pip,
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        dist,
        unpacked,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("triage-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        data = {n.removeprefix("triage/_data/") for n in zf.namelist() if "/_data/" in n}
    assert data == _shipped_files()

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        _run(
            python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path
        ).strip()
    )
    # This environment's packages (but not its editable triage) after the venv's own.
    here = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "dev-packages.pth").write_text("".join(f"{p}\n" for p in sorted(here)))
    _run(
        *pip,
        "--python",
        python,
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        "--no-compile",
        wheel,
        cwd=tmp_path,
    )
    where = _run(python, "-c", "import triage; print(triage.__file__)", cwd=tmp_path).strip()
    assert Path(where).is_relative_to(site), f"triage imported from {where}, not the wheel"

    _init_and_upgrade([env_dir / "bin" / "triage"], tmp_path)


def test_editable_install_runs_init_and_db_upgrade(tmp_path: Path) -> None:
    """The development environment (`pip install -e .`) reads the files at the root."""
    if Path(triage.__file__).resolve().parent != ROOT / "triage":
        pytest.skip("triage is not installed in editable mode from this checkout")
    script = Path(sys.executable).parent / "triage"
    if not script.exists():
        pytest.skip("no `triage` script next to this interpreter")
    _init_and_upgrade([script], tmp_path)


def test_alembic_command_line_finds_the_scripts_from_a_checkout(tmp_path: Path) -> None:
    """`alembic -c alembic.ini ...` uses alembic/; `check` is `revision --autogenerate`, dry."""
    alembic = Path(sys.executable).parent / "alembic"
    if not alembic.exists():
        pytest.skip("no `alembic` script next to this interpreter")
    ini = ROOT / "alembic.ini"
    # sqlalchemy.url is a relative SQLite path: the database lands in tmp_path, not the checkout.
    assert f"{_head()} (head)" in _run(alembic, "-c", ini, "heads", cwd=tmp_path)
    _run(alembic, "-c", ini, "upgrade", "head", cwd=tmp_path)
    assert "No new upgrade operations detected" in _run(alembic, "-c", ini, "check", cwd=tmp_path)
