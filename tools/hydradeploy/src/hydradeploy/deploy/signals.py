"""SIGINT, SIGTERM and SIGHUP during a deploy, handled alike.

A closed terminal sends SIGHUP and systemd stopping a CI job sends SIGTERM; left at
their defaults they end the process on the spot: no lock released, no record. Here the
first of them, while the deploy runs, becomes the KeyboardInterrupt the engine already
handles (stop at safe points, let hosts after activation finish or roll back). Later
ones never raise again: raising a second time would break out of waiting for hosts in
flight and skip their rollback, lock release and record. They only say that the run is
already stopping (the engine's own waits are bounded).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_status(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 128 + its number."""
    return 128 + signum


def detach_terminal(fds: tuple[int, ...] = (0, 1, 2)) -> None:
    """SIGHUP: the terminal is gone, and writing to it fails (EIO) — in the middle of a
    host's rollback. Point whichever of our standard streams were that terminal at
    /dev/null; pipes and files (a CI log, `--output json` read by a program) stay."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        try:
            for fd in fds:
                with contextlib.suppress(OSError):
                    if os.isatty(fd):
                        os.dup2(null, fd)
        finally:
            os.close(null)


def exit_exception(signum: int | None) -> BaseException:
    """What ends the command after an interrupt: KeyboardInterrupt for SIGINT (exit
    130), else SystemExit(128 + the signal's number)."""
    if signum in (None, signal.SIGINT):
        return KeyboardInterrupt()
    with contextlib.suppress(OSError, ValueError):
        name = signal.Signals(signum).name  # type: ignore[arg-type]
        print(f"hydradeploy: stopped by {name}", file=sys.stderr, flush=True)
    return SystemExit(exit_status(signum or 0))


class Interrupts:
    """Installed (main thread only) for the whole command; `raising()` marks the part
    during which the first signal interrupts the work."""

    def __init__(self, on_again: Callable[[int], None] | None = None) -> None:
        self.signum: int | None = None
        self.count = 0
        self._raising = False
        self._raised = False
        self._on_again = on_again
        self._saved: dict[int, object] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if signum == signal.SIGHUP:
            detach_terminal()
        if self.signum is None:
            self.signum = signum
        if self._raising and not self._raised:
            self._raised = True
            raise KeyboardInterrupt
        if self._on_again is not None:
            self._on_again(signum)

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for s in HANDLED:
                self._saved[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, old in self._saved.items():
            signal.signal(s, old)  # type: ignore[arg-type]
        self._saved.clear()

    def exit(self) -> BaseException:
        return exit_exception(self.signum)

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """Within: the first signal raises KeyboardInterrupt (at once when one already
        arrived before). Outside: signals are only counted."""
        if self.signum is not None and not self._raised:
            self._raised = True
            raise KeyboardInterrupt
        self._raising = True
        try:
            yield
        finally:
            self._raising = False


def install() -> Interrupts:
    """Handlers for the rest of this command (the process ends after it)."""
    return Interrupts(say_already_stopping).__enter__()


def say(signum: int, text: str) -> None:
    """`hydradeploy: SIGNAME<text>` on stderr, from a signal handler: never raises (the
    terminal may be gone)."""
    with contextlib.suppress(OSError, ValueError):
        print(f"hydradeploy: {signal.Signals(signum).name}{text}", file=sys.stderr, flush=True)


def say_already_stopping(signum: int) -> None:
    say(signum, " again: already stopping; hosts after activation finish their checks or "
        "roll back, then locks and the record")  # fmt: skip


# A test hook: the lab tests kill the deployer at exact points of a host's deploy (issue 15:
# "SIGKILL at each step, including between profile and guard"). Unset, it costs nothing.
PAUSE_ENV = "HYDRADEPLOY_PAUSE_AT"  # "STEP" or "HOST:STEP" (engine: arm, armed, …)
PAUSE_SECONDS_ENV = "HYDRADEPLOY_PAUSE_SECONDS"  # how long (default 60 s)


def pause_point(host: str, step: str, cancelled: Callable[[], bool] | None = None) -> None:
    """When HYDRADEPLOY_PAUSE_AT names this point: say so on stderr, then wait (until
    the pause ends or `cancelled()`), so that a test can signal the deployer right here."""
    want = os.environ.get(PAUSE_ENV, "")
    if not want or want not in (step, f"{host}:{step}"):
        return
    try:
        seconds = float(os.environ.get(PAUSE_SECONDS_ENV, "60"))
    except ValueError:
        seconds = 60.0
    with contextlib.suppress(OSError):
        print(f"hydradeploy: paused at {host}:{step}", file=sys.stderr, flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (cancelled and cancelled()):
        time.sleep(0.1)
