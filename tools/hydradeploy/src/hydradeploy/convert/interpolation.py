"""Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
`${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, `$$` for a literal `$`,
defaults nesting further interpolation; and the `.env` file format.

Facts from compose-go v2 (github.com/compose-spec/compose-go, commit e70e961, v2.13.0+6,
2026-07-21): template/template.go for interpolation, dotenv/parser.go and dotenv/env.go
for `.env`. Cited below as "template.go" and "parser.go".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# template.go substitutionNamed "[_a-z][_a-z0-9]*" inside `(?i:…)`: ASCII, any case
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    pass


def interpolate(text: str, env: Mapping[str, str], missing: set[str] | None = None) -> str:
    """Substitute variables in `text`; unset variables without default become "" and are
    added to `missing` (compose warns about them the same way)."""
    if "$" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing(text, i + 2)
            out.append(_braced(text[i + 2 : end], env, missing))
            i = end + 1
        else:
            m = _NAME.match(text, i + 1)
            if not m:
                # DefaultPattern matches only `$$`, `$name` and `${…}`; any other `$` is
                # left as it is (template_test.go TestUnescaped: "a $ string", "^REGEX$")
                out.append("$")
                i += 1
                continue
            out.append(_lookup(m.group(0), env, missing))
            i = m.end()
    return "".join(out)


def _closing(text: str, start: int) -> int:
    """Index of the `}` that closes the `${` before `start`, counted as template.go
    getFirstBraceClosingIndex counts: every `{` opens (and the character after it is
    skipped), every `}` closes, so `${A:-{x}}` has the default `{x}`."""
    depth = 1
    i = start + 1
    while i < len(text):
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        elif text[i] == "{":
            depth += 1
            i += 1
        i += 1
    # unbalanced: DefaultPattern's greedy `(.*)}` still ends at the line's last `}`
    end = text.rfind("}", start, _line_end(text, start))
    if end < 0:
        raise InterpolationError(f"unclosed '${{' in {text!r}")
    return end


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _lookup(name: str, env: Mapping[str, str], missing: set[str] | None) -> str:
    # unset: "" and a warning "The %q variable is not set. Defaulting to a blank string."
    # (template.go DefaultReplacementAppliedFunc)
    if name in env:
        return env[name]
    if missing is not None:
        missing.add(name)
    return ""


def _braced(body: str, env: Mapping[str, str], missing: set[str] | None) -> str:
    m = _NAME.match(body)
    if not m:
        raise InterpolationError(f"invalid variable name in {'${' + body + '}'!r}")
    name, rest = m.group(0), body[m.end() :]
    if not rest:
        return _lookup(name, env, missing)
    # template.go substitutionBraced `name(?::?[-+?](.*))?`; ":-"/"-" default when
    # unset-or-empty/unset, ":+"/"+" replace when set-and-nonempty/set, ":?"/"?" error;
    # the default, replacement and message are interpolated in turn (Substitute)
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            break
    else:
        raise InterpolationError(f"invalid interpolation {'${' + body + '}'!r}")
    value = env.get(name)
    empty_counts = op.startswith(":")
    is_set = value is not None and (value != "" or not empty_counts)
    if op.endswith("-"):
        return value if is_set and value is not None else interpolate(arg, env, missing)
    if op.endswith("+"):
        return interpolate(arg, env, missing) if is_set else ""
    if not is_set:
        message = interpolate(arg, env, missing) or "not set"
        raise InterpolationError(f"required variable {name}: {' '.join(message.split())}")
    return value or ""


def interpolate_tree(data: Any, env: Mapping[str, str], missing: set[str], path: str = "") -> Any:
    """Interpolate every string value (not keys) of a parsed compose document."""
    if isinstance(data, str):
        try:
            return interpolate(data, env, missing)
        except InterpolationError as exc:
            raise InterpolationError(f"{path or 'value'}: {exc}") from None
    if isinstance(data, dict):
        return {k: interpolate_tree(v, env, missing, _join(path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_tree(v, env, missing, f"{path}[{i}]") for i, v in enumerate(data)]
    return data


def _join(path: str, key: Any) -> str:
    text = str(key)
    if not _PLAIN_KEY.fullmatch(text):
        text = repr(text)
    return f"{path}.{text}" if path else text


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def parse_env_file(text: str, source: str) -> dict[str, str]:
    """KEY=VALUE lines; `export`, comments, single quotes literal, double quotes with \\n."""
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, eq, value = line.partition("=")
        key = key.strip()
        if not eq or not _NAME.fullmatch(key):
            raise InterpolationError(f"{source}: line {number}: want KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0]
        env[key] = value
    return env
