"""Live per-host view of a deploy on stderr: a rich table (host, step, elapsed, last
remote line) on a terminal, plain timestamped lines otherwise (CI logs, pipes)."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class _Row:
    step: str = "waiting"
    line: str = ""
    started: float = field(default_factory=time.monotonic)
    done: bool = False


class Progress:
    """Thread-safe; `step` and `line` may be called from any worker thread."""

    def __init__(
        self,
        hosts: list[str],
        *,
        stream: TextIO | None = None,
        live: bool | None = None,
        quiet: bool = False,
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live_mode = (self.stream.isatty() if live is None else live) and not quiet
        self.rows = {h: _Row() for h in hosts}
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._live: Any = None
        self._caption = ""  # the schedule: slots in use, hosts prepared (live view only)

    def __enter__(self) -> Progress:
        if self.live_mode:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                self._render(),
                console=Console(file=self.stream),
                refresh_per_second=8,
                transient=True,
                get_renderable=self._render,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(
            box=None, pad_edge=False, show_header=True, header_style="bold",
            caption=self._caption or None, caption_justify="left",
        )  # fmt: skip
        for col in ("host", "step", "time", "last output"):
            table.add_column(col, no_wrap=col != "last output", overflow="ellipsis")
        now = time.monotonic()
        with self._lock:
            for host, row in self.rows.items():
                table.add_row(host, row.step, f"{now - row.started:5.1f}s", row.line[-100:])
        return table

    def _plain(self, host: str, text: str) -> None:
        if self.quiet or self.live_mode:
            return
        print(f"[{time.monotonic() - self.t0:6.1f}s] {host}: {text}", file=self.stream, flush=True)

    def step(self, host: str, step: str, detail: str = "") -> None:
        with self._lock:
            row = self.rows.setdefault(host, _Row())
            row.step, row.line, row.started = step, detail, time.monotonic()
        self._plain(host, f"{step}{': ' + detail if detail else ''}")

    def line(self, host: str, text: str) -> None:
        with self._lock:
            self.rows.setdefault(host, _Row()).line = text

    def caption(self, text: str) -> None:
        """A line under the live table (where the schedule stands); not logged."""
        with self._lock:
            self._caption = text

    def schedule(self, text: str) -> None:
        """A line about the run as a whole (a stage starting), in plain logs too."""
        self.caption(text)
        self._plain("deploy", text)

    def note(self, host: str, text: str) -> None:
        """A line worth keeping in plain logs too (a failure, a rollback)."""
        self.line(host, text)
        self._plain(host, text)
