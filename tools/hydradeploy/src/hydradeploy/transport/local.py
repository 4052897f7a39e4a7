"""Commands on this machine: an argv (never a shell), a timeout, and a one-line error
naming the command when it cannot run, times out or (with `check`) fails."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from hydradeploy.transport.result import Result


class LocalError(Exception):
    """A local command could not run, timed out, or failed; the message names it."""


def _said(stderr: str, rc: int) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return next((ln for ln in lines if "error:" in ln), lines[-1] if lines else f"exit status {rc}")


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    input: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = False,
    what: str | None = None,
) -> Result:
    """Run argv; stdout/stderr captured as text (bytes input is passed through)."""
    label = what or shlex.join(argv)
    full_env = {**os.environ, **env} if env is not None else None
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.run(
            list(argv),
            input=data,
            stdin=None if data is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=full_env,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError:
        raise LocalError(f"{argv[0]} not found on this machine") from None
    except subprocess.TimeoutExpired:
        raise LocalError(f"{label} took longer than {timeout:g} s") from None
    res = Result(
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )
    if check and proc.returncode != 0:
        raise LocalError(f"{label} failed: {_said(res.stderr, proc.returncode)}")
    return res


def run_bytes(
    argv: Sequence[str],
    *,
    timeout: float,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[int, bytes, bytes]:
    """Like `run`, for binary output (age): (status, stdout, stderr)."""
    full_env = {**os.environ, **env} if env is not None else None
    try:
        proc = subprocess.run(
            list(argv), input=input, capture_output=True, timeout=timeout, env=full_env, check=False
        )
    except FileNotFoundError:
        raise LocalError(f"{argv[0]} not found on this machine") from None
    except subprocess.TimeoutExpired:
        raise LocalError(f"{shlex.join(argv)} took longer than {timeout:g} s") from None
    return proc.returncode, proc.stdout, proc.stderr


def interactive(argv: Sequence[str]) -> int:
    """Run argv attached to the terminal (an editor); its exit status."""
    try:
        return subprocess.run(list(argv), check=False).returncode
    except FileNotFoundError:
        raise LocalError(f"{argv[0]} not found on this machine") from None


def start_reading_stderr(argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start argv (no stdin, stdout dropped) with its stderr piped as text, for a log read
    while it runs (`nix copy --log-format internal-json`)."""
    try:
        return subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env, text=True, errors="replace",
        )  # fmt: skip
    except FileNotFoundError:
        raise LocalError(f"{argv[0]} not found on this machine") from None
