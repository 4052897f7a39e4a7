"""Where plaintext may touch a disk at all: a private (0700) temporary directory, in RAM
(/dev/shm) when the machine has it, wiped and removed however the work inside ends.

Wiping overwrites the bytes before unlinking. On copy-on-write or journaling
filesystems an overwrite is not a guarantee, which is why /dev/shm is preferred.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _ram_dir() -> str | None:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return str(shm)
    return None


def wipe_file(path: Path) -> None:
    """Overwrite a file with zeros, then delete it (missing file: nothing to do)."""
    try:
        size = path.stat().st_size
        with open(path, "r+b", buffering=0) as fh:
            fh.write(b"\0" * size)
            os.fsync(fh.fileno())
    except FileNotFoundError:
        return
    except OSError:
        pass  # still unlink below
    path.unlink(missing_ok=True)


def wipe_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            wipe_file(Path(dirpath) / name)
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def private_dir(base: str | None = None) -> Iterator[Path]:
    """A 0700 directory for plaintext, wiped on exit (also on errors and Ctrl-C)."""
    old = os.umask(0o077)
    try:
        path = Path(tempfile.mkdtemp(prefix="hydra-secret-", dir=base or _ram_dir()))
    finally:
        os.umask(old)
    try:
        yield path
    finally:
        wipe_tree(path)
