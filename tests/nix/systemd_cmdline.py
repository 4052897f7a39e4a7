"""systemd's reading of an ExecStart= value, for the tests: what argv a unit file line
becomes. Written from the man pages, not from systemd's code:

- systemd.syntax(7): "Lines ending in a backslash are concatenated with the following
  line while reading and the backslash is replaced by a space character."
- systemd.unit(5), "SPECIFIERS": `%%` is a literal `%`; any other `%x` is a specifier.
- systemd.service(5), "COMMAND LINES": "Each command line is split on whitespace ...
  Double quotes ("...") and single quotes ('...') may be used to wrap a whole item (the
  opening quote may appear only at the beginning or after whitespace that is not quoted,
  and the closing quote must be followed by whitespace or the end of line), in which case
  everything until the next matching quote becomes part of the same argument. Quotes
  themselves are removed. C-style escapes are also supported." `$$` is a literal `$`;
  `${VAR}` and a word `$VAR` are environment variables; a lone `;` separates commands.

Anything this project must never produce (a specifier, a variable, a second command,
an unterminated quote) raises CommandLineError instead of being expanded.
"""

from __future__ import annotations

import re

_C_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "s": " ",
}  # fmt: skip


class CommandLineError(ValueError):
    pass


def _join_continuations(value: str) -> str:
    return re.sub(r"\\\n", " ", value)


def _unescape_percent(value: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        raise CommandLineError(f"specifier {m.group(0)!r} would be expanded by systemd")

    return re.sub(r"%.", repl, value)


def _unescape_dollar(word: str) -> str:
    out = []
    i = 0
    while i < len(word):
        if word.startswith("$$", i):
            out.append("$")
            i += 2
        elif word[i] == "$":
            raise CommandLineError(
                f"environment variable in {word!r} would be expanded"
            )
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


def _read_escape(text: str, i: int) -> tuple[str, int]:
    """The character of the C escape starting at text[i] (a backslash)."""
    if i + 1 >= len(text):
        raise CommandLineError("backslash at the end of the command line")
    ch = text[i + 1]
    if ch not in _C_ESCAPES:
        raise CommandLineError(f"unsupported escape \\{ch}")
    return _C_ESCAPES[ch], i + 2


def split_exec_start(value: str) -> list[str]:
    """The argv of one ExecStart= value (a single command)."""
    text = _unescape_percent(_join_continuations(value))
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\n":
            i += 1
        if i >= n:
            break
        chars: list[str] = []
        if text[i] in "\"'":
            quote = text[i]
            i += 1
            while True:
                if i >= n:
                    raise CommandLineError(f"unterminated {quote} quote")
                if text[i] == quote:
                    i += 1
                    break
                if text[i] == "\\":
                    ch, i = _read_escape(text, i)
                    chars.append(ch)
                else:
                    chars.append(text[i])
                    i += 1
            if i < n and text[i] not in " \t\n":
                raise CommandLineError("a closing quote must be followed by whitespace")
        else:
            while i < n and text[i] not in " \t\n":
                if text[i] == "\\":
                    ch, i = _read_escape(text, i)
                    chars.append(ch)
                else:
                    chars.append(text[i])
                    i += 1
            if "".join(chars) == ";":
                raise CommandLineError("';' would start a second command")
        words.append(_unescape_dollar("".join(chars)))
    return words
