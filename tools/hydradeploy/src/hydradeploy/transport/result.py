"""The outcome of one command, local or remote."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def last_line(self) -> str:
        for text in (self.stderr, self.stdout):
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if lines:
                return lines[-1].strip()
        return ""


def script(body: str, *args: str) -> list[str]:
    """argv running a constant shell script with values as "$1" "$2" …"""
    return ["sh", "-c", body, "hydradeploy", *args]
