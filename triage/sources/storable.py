"""Text from any service made storable once, where items enter: every database takes it as is.

JSON may carry lone surrogates ("\\ud800"), which no UTF-8 encoder accepts, and NUL bytes, which
PostgreSQL text columns refuse; one such character must not block a whole repository.
"""

from __future__ import annotations

import re
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable_text(value: str) -> str:
    """Lone surrogates become U+FFFD, NUL bytes are removed; anything else is kept."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    return _LONE_SURROGATE.sub(REPLACEMENT, value)


def make_storable(value: Any, path: str, changed: list[str]) -> Any:
    """`value` with every string storable; the paths of changed strings go to `changed`."""
    if isinstance(value, str):
        clean = storable_text(value)
        if clean != value:
            changed.append(path)
        return clean
    if isinstance(value, dict):
        return {
            make_storable(k, path, changed): make_storable(v, f"{path}.{k}", changed)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [make_storable(v, f"{path}[{i}]", changed) for i, v in enumerate(value)]
    return value
