"""The part of the build that pyproject.toml cannot declare.

pyproject.toml maps the package `triage._data` onto the project root and names the files it
ships (alembic/, config.example.toml). `packages.find` cannot list a mapped package, so the
package list is built here; and of the root only those named files ship, never a Python file
that happens to sit there (this one included).
"""

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

DATA = "triage._data"


class BuildPy(build_py):
    def find_package_modules(self, package, package_dir):
        if package == DATA:
            return []
        return super().find_package_modules(package, package_dir)


setup(
    packages=[*find_namespace_packages(include=["triage*", "jobs*"]), DATA],
    cmdclass={"build_py": BuildPy},
)
