"""Where in the inventory file an issue points: the line of the nearest table header or
key that the issue's path runs through. tomllib keeps no positions, so the file's lines
are read for `[table]`, `[[array]]` and `key =` (a lightweight reading that needs only
what a valid TOML file already is)."""

from __future__ import annotations

import re

_BARE = r"[A-Za-z0-9_-]+"
_KEY = rf'(?:{_BARE}|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART = re.compile(_KEY)


def _parts(dotted: str) -> list[str]:
    out = []
    for m in _PART.finditer(dotted):
        token = m.group(0)
        if token[0] == '"':
            token = token[1:-1].encode().decode("unicode_escape")
        elif token[0] == "'":
            token = token[1:-1]
        out.append(token)
    return out


def _opens_multiline(value: str) -> bool:
    """Whether a value starts a multi-line string or array on this line."""
    if value.startswith('"""'):
        return value.count('"""') == 1
    return value.startswith("[") and value.count("[") > value.count("]")


def key_lines(text: str) -> dict[str, int]:
    """Every table header and key of the file, as the dotted path an Issue uses
    (array-of-table entries with their index), mapped to its 1-based line."""
    where: dict[str, int] = {}
    arrays: dict[str, int] = {}
    table: list[str] = []
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:  # inside a multi-line string or array: not a key line
            if line.count('"""') % 2 == 1 or line.strip().startswith("]"):
                in_multiline = False
            continue
        header = _HEADER.match(line)
        if header:
            parts = _parts(header.group(2))
            path = ".".join(parts)
            if header.group(1) == "[[":
                index = arrays.get(path, -1) + 1
                arrays[path] = index
                parts = [*parts, str(index)]
                where.setdefault(path, number)
            table = parts
            where.setdefault(".".join(table), number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            full = ".".join([*table, *_parts(assign.group(1))])
            where.setdefault(full, number)
            in_multiline = _opens_multiline(line[assign.end() :].strip())
    return where


def line_of(where: dict[str, int], path: str) -> int | None:
    """The line of the longest known prefix of `path` (whole components only)."""
    probe = path
    while probe:
        if probe in where:
            return where[probe]
        if "." not in probe:
            return None
        probe = probe.rsplit(".", 1)[0]
    return None
