"""One finding of a check: where, which check, what is wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    where: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.check}] {self.message}"
