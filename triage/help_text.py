"""Readable help: options show a value name (`--limit N`), not a type (`<int range>`)."""

from __future__ import annotations

from typing import Any

# What a type label becomes; anything else: the option's own name in capitals.
_BY_TYPE = {"int": "N", "int range": "N", "float": "NUMBER", "float range": "NUMBER"}
_BY_TYPE |= {"path": "PATH", "datetime": "TIME"}


def _metavar(param: Any, ctx: Any) -> str:
    label = param.display_type(ctx).strip("<>")
    if "|" in label:  # choices: the choices themselves, as click writes them
        return "[" + label.removeprefix("list[").removesuffix("]") + "]"
    if label.startswith("list["):
        label = label.removeprefix("list[").removesuffix("]")
    return _BY_TYPE.get(label) or str(param.name or "value").upper()


def name_values(command: Any, ctx: Any) -> None:
    """Give every option and argument of `command` and its subcommands a value name."""
    for param in command.params:
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        if param.metavar is None and hasattr(param, "display_type"):
            param.metavar = _metavar(param, ctx)
    for sub in getattr(command, "commands", {}).values():
        name_values(sub, ctx)
