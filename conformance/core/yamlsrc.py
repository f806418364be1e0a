"""YAML loading that remembers line numbers, so errors can name file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from conformance.errors import InputError


class LineDict(dict):
    """A mapping from a YAML file; `line_of(key)` gives the 1-based line of a key."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping names the same key twice (YAML would silently keep the last one)."""

    def __init__(self, key: str, first_line: int, mark: yaml.Mark):
        super().__init__(None, None, f"duplicate key (already on line {first_line})", mark)
        self.key = key


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:  # type: ignore[override]
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in result:
                raise DuplicateKey(str(key), result.key_lines[str(key)], key_node.start_mark)
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[str(key)] = key_node.start_mark.line + 1
        return result


_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: loader.construct_mapping(node),
)


def load(path: Path) -> Any:
    """Parse a YAML file; a syntax error becomes an InputError with its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, "", f"cannot read: {exc}") from exc
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError(path, getattr(exc, "key", ""), f"invalid YAML: {exc.problem or exc}", line) from exc
    except yaml.YAMLError as exc:
        raise InputError(path, "", f"invalid YAML: {exc}") from exc


def check_keys(path: Path, data: LineDict, allowed: set[str], where: str) -> None:
    """Reject keys outside `allowed`, naming the first unknown one."""
    for key in data:
        if key not in allowed:
            raise InputError(
                path, f"{where}{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})",
                data.line_of(str(key)),
            )


def expect_int_id(path: Path, data: LineDict, key: str, where: str) -> int | None:
    """Read an optional ID in 0..2147483647."""
    if key not in data:
        return None
    return int_id(path, data[key], f"{where}{key}", data.line_of(key))


def int_id(path: Path, value: Any, field: str, line: int) -> int:
    """Validate one ID value."""
    from conformance.core.model import MAX_ID

    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(path, field, f"must be an integer, got {value!r}", line)
    if not 0 <= value <= MAX_ID:
        raise InputError(path, field, f"{value} is outside 0..{MAX_ID}", line)
    return value
