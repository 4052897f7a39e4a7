"""Compose's split of a string `command:`/`entrypoint:` into words.

compose-go v2 types/command.go ShellCommand.DecodeMapstructure (commit e70e961) calls
github.com/mattn/go-shellwords Parse at v1.0.12 (compose-go's go.mod), with ParseEnv and
ParseBacktick off. Its rules (shellwords.go Parser.Parse at tag v1.0.12), which are not
POSIX's: a backslash outside single quotes keeps the next character whatever it is (also
inside double quotes); single and double quotes group; `` `…` `` and `$(…)` are kept as
text, spaces included; an unquoted `(` not after `$` is an error; an unquoted `;`, `&`,
`|`, `<` or `>` ends the command line there and the rest is dropped (a `>` right after
digits, `2>`, drops those digits too).
"""

from __future__ import annotations

_SPACES = " \t\r\n"  # shellwords.go isSpace
_STOPS = ";&|<>"


class ShellWordsError(ValueError):
    pass


def split(line: str) -> tuple[list[str], str]:
    """(words, dropped): what compose runs, and the tail it ignores ("" when none)."""
    args: list[str] = []
    buf = ""
    escaped = double = single = back = dollar = False
    got = False  # an argument is open (argSingle or argQuoted)
    for i, ch in enumerate(line):
        if escaped:
            buf += ch
            escaped = False
            got = True
            continue
        if ch == "\\":
            if single:
                buf += ch
            else:
                escaped = True
            continue
        if ch in _SPACES:
            if single or double or back or dollar:
                buf += ch
            elif got:
                args.append(buf)
                buf, got = "", False
            continue
        if ch == "`" and not single and not double and not dollar:
            back = not back
        elif ch == ")" and not single and not double and not back:
            dollar = not dollar
        elif ch == "(" and not single and not double and not back:
            if dollar or not buf.endswith("$"):
                raise ShellWordsError("invalid command line string")
            dollar = True
            buf += ch
            continue
        elif ch == '"' and not single and not dollar:
            if double:
                got = True
            double = not double
            continue
        elif ch == "'" and not double and not dollar:
            if single:
                got = True
            single = not single
            continue
        elif ch in _STOPS and not (single or double or back or dollar):
            rest = line[i:]
            if ch == ">" and buf and buf[0].isdigit():
                rest = buf[-1] + rest  # v1.0.12 steps back one character
                buf, got = "", False
            if got:
                args.append(buf)
            return args, rest
        got = True
        buf += ch
    if got:
        args.append(buf)
    if escaped or single or double or back or dollar:
        raise ShellWordsError("invalid command line string")
    return args, ""
