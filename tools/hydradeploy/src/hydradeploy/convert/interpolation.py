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
    """Interpolate every string value (not keys) of a parsed compose document, as
    compose-go interpolation/interpolation.go recursiveInterpolate (e70e961) walks it:
    map values and list items, never map keys."""
    if isinstance(data, str):
        try:
            return interpolate(data, env, missing)
        except InterpolationError as exc:
            raise InterpolationError(f"{path or 'value'}: {exc}") from None
    if isinstance(data, dict):
        out = {k: interpolate_tree(v, env, missing, _join(path, k)) for k, v in data.items()}
        return out if type(data) is dict else type(data)(out)  # keeps an `!override` mark
    if isinstance(data, list):
        items = [interpolate_tree(v, env, missing, f"{path}[{i}]") for i, v in enumerate(data)]
        return items if type(data) is list else type(data)(items)
    return data


def _join(path: str, key: Any) -> str:
    text = str(key)
    if not _PLAIN_KEY.fullmatch(text):
        text = repr(text)
    return f"{path}.{text}" if path else text


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]+")


# parser.go isSpace: spaces that are not line breaks
_ENV_SPACE = frozenset("\t\v\f\r \x85\xa0")
# parser.go escapeSeqRegex, applied to double-quoted values only (expandEscapes)
_ENV_ESCAPE = re.compile(r"\\(?:[abcfnrtv$\"\\]|0\d{0,3})")
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_GO_ESCAPES.update({'"': '"', "\\": "\\"})
_EXPORT = re.compile(r"export\s+")


def _env_escape(m: re.Match[str]) -> str:
    seq = m.group(0)[1:]
    if seq == "$":
        return "$$"  # parser.go: `\$` becomes `$$`, a literal `$` after expansion
    if seq[0] == "0":
        # `\0ddd` → Go's `\ddd`: strconv.UnquoteChar takes exactly three octal digits
        # up to 0377; anything else fails there and the text is kept as it was
        digits = seq[1:]
        if len(digits) == 3 and all(d in "01234567" for d in digits) and int(digits, 8) < 256:
            return chr(int(digits, 8))
        return m.group(0)
    return _GO_ESCAPES.get(seq, m.group(0))  # `\c` is no Go escape: kept


def parse_env_file(
    text: str, source: str, lookup: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A `.env` file as compose-go reads it (parser.go parse, env.go GetEnvFromFile):
    `KEY=VALUE` or `KEY: VALUE`, optional `export `, `#` comment lines; unquoted values
    end at the line (an inline comment needs a space before `#`); quoted values may span
    lines; single quotes are literal; double quotes expand `\n`-style escapes; unquoted
    and double-quoted values interpolate `${VAR}` from `lookup` (the shell) first, then
    the keys above; a bare `KEY` line takes KEY from `lookup`, or sets nothing."""
    lookup = lookup or {}
    env: dict[str, str] = {}
    if text.startswith("\ufeff"):  # env.go/godotenv.go trim a UTF-8 BOM
        text = text[1:]

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def expand(value: str, pos: int) -> str:
        try:
            return interpolate(value, {**env, **lookup})
        except InterpolationError as exc:
            raise InterpolationError(f"{source}: line {line_of(pos)}: {exc}") from None

    i, n = 0, len(text)
    while True:
        # getStatementStart: skip whitespace and `#` comment lines
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return env
        if text[i] == "#":
            nl = text.find("\n", i)
            if nl < 0:
                return env
            i = nl
            continue
        # locateKeyName: name characters are letters, digits and `_ . - [ ]`;
        # `=`, `:` (the YAML-like form) or a line break end the name
        m = _EXPORT.match(text, i)
        if m:
            i = m.end()
            while i < n and text[i] in _ENV_SPACE:
                i += 1
        key_start, sep = i, ""
        while i < n:
            ch = text[i]
            if ch in "=:\n":
                sep = ch
                break
            if not (ch in _ENV_SPACE or ch in "_.-[]" or ch.isalnum()):
                line = text[key_start:].split("\n", 1)[0]
                raise InterpolationError(
                    f"{source}: line {line_of(i)}: unexpected character {ch!r} in variable name {line!r}"
                )
            i += 1
        key = text[key_start:i].rstrip()
        if " " in key:
            raise InterpolationError(
                f"{source}: line {line_of(key_start)}: key cannot contain a space"
            )
        if not sep:
            # a name alone on the last line, without a line break: compose-go reads it
            # as the value of an empty name, which nothing can reference
            return env
        i += 1
        if sep == "\n":
            if key in lookup:
                env[key] = lookup[key]
            continue
        while i < n and text[i] in _ENV_SPACE:
            i += 1
        quote = text[i] if i < n and text[i] in "'\"" else ""
        if not quote:
            # extractVarValue: to the line's end, cut at " #", trailing space trimmed
            nl = text.find("\n", i)
            end = n if nl < 0 else nl
            value = text[i:end].split(" #", 1)[0].rstrip()
            env[key] = expand(value, i)
            i = end + 1
            continue
        # quoted: to the next unescaped quote, across lines; `\<quote>` is the quote,
        # any other backslash is kept for expandEscapes
        chars: list[str] = []
        escaped = False
        j = i + 1
        while j < n:
            ch = text[j]
            if ch != quote:
                if not escaped and ch == "\\":
                    escaped = True
                elif escaped:
                    escaped = False
                    chars.append("\\" + ch)
                else:
                    chars.append(ch)
            elif escaped:
                escaped = False
                chars.append(ch)
            else:
                break
            j += 1
        else:
            line = text[i:].split("\n", 1)[0]
            raise InterpolationError(
                f"{source}: line {line_of(i)}: unterminated quoted value {line}"
            )
        value = "".join(chars)
        if quote == '"':
            value = expand(_ENV_ESCAPE.sub(_env_escape, value), i)
        env[key] = value
        i = j + 1
