"""The SOURCES registry: one entry per kind of source; sync, backfill and doctor read it.

A source module (and its HTTP library) is imported only when one of its sources is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from triage.sources.base import Source, SourceBuilder, SourceDeps


@dataclass(frozen=True)
class SourceSpec:
    """One kind of source: adding a source is adding an entry here and a module beside it."""

    name: str
    config_section: str
    secret_env: tuple[str, ...]
    builders: Callable[[SourceDeps], list[SourceBuilder]]  # one per configured repo spec / tag
    doctor: str | None  # "module:function" taking the Context, imported when doctor runs it
    # The one source a sync unit names after its kind (`owner/repo`, `site/tag`), for a replica
    # that claimed it: built alone, with no `org/*` listing again.
    named: Callable[[SourceDeps, str], Source]


def github_sources(
    deps: SourceDeps, repos: list[str], conditional: bool = False
) -> Sequence[Source]:
    """One source per repository; `org/*` expands to the org's (or user's) repositories.

    `conditional`: each pass starts with a conditional request, free when nothing changed.
    """
    from triage.sources import github

    return github.make_sources(deps, repos, conditional)


def stackexchange_sources(deps: SourceDeps, tags: list[str], site: str) -> Sequence[Source]:
    """One source per tag of one site."""
    from triage.sources import stackexchange

    return stackexchange.make_sources(deps, tags, site)


def source_named(deps: SourceDeps, name: str) -> Source:
    """The sync source a planned unit names (`github:owner/repo`, `stackexchange:site/tag`)."""
    kind, _, rest = name.partition(":")
    if kind not in SOURCES:
        raise ValueError(f"no source kind {kind!r} (from {name!r})")
    return SOURCES[kind].named(deps, rest)


def _github_named(deps: SourceDeps, repo: str) -> Source:
    return github_sources(deps, [repo], conditional=True)[0]


def _stackexchange_named(deps: SourceDeps, site_tag: str) -> Source:
    site, _, tag = site_tag.rpartition("/")
    return stackexchange_sources(deps, [tag], site)[0]


def _github_builders(deps: SourceDeps) -> list[SourceBuilder]:
    # Builders serve sync (the command and the daemon's job), which runs again and again with
    # little new each time: its sources ask first whether anything changed.
    return [
        ("github", f"github:{spec}", partial(github_sources, deps, [spec], conditional=True))
        for spec in deps.config.github.repos
    ]


def _stackexchange_builders(deps: SourceDeps) -> list[SourceBuilder]:
    site = deps.config.stackexchange.site
    return [
        (
            "stackexchange",
            f"stackexchange:{site}/{tag}",
            partial(stackexchange_sources, deps, [tag], site),
        )
        for tag in deps.config.stackexchange.tags
    ]


SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        SourceSpec(
            "github",
            "github",
            ("GITHUB_TOKEN",),
            _github_builders,
            "triage.sources.github:doctor_check",
            _github_named,
        ),
        SourceSpec(
            "stackexchange",
            "stackexchange",
            ("STACKEXCHANGE_KEY",),
            _stackexchange_builders,
            "triage.sources.stackexchange:doctor_check",
            _stackexchange_named,
        ),
    )
}
