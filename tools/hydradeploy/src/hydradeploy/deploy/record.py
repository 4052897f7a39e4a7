"""The deploy record: one JSON line per deploy or rollback, so "what changed last
night" has an answer.

Kept in two places: locally in $XDG_STATE_HOME/hydradeploy/deploys.jsonl (default
~/.local/state/hydradeploy/deploys.jsonl) with every host of the run, and on each host
in /var/lib/hydradeploy/deploys.jsonl with that host's own entry, so a host's history
survives a lost laptop.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from hydradeploy.deploy import verified
from hydradeploy.deploy.lock import STATE_DIR
from hydradeploy.deploy.models import HostReport
from hydradeploy.transport import Connection, RemoteError, script

REMOTE_RECORD = f"{STATE_DIR}/deploys.jsonl"

_APPEND = r"""
file=$1
mkdir -p "${file%/*}" && cat >> "$file"
"""


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def local_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hydradeploy" / "deploys.jsonl"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def entry(
    run_id: str,
    command: str,
    started: str,
    reports: list[HostReport],
    outcome: str,
    args: list[str],
    *,
    inventory: str | None = None,
    cluster: str | None = None,
) -> dict[str, Any]:
    return {
        "id": run_id,
        # absolute: `history --this-inventory` compares it from any working directory
        "inventory": str(Path(inventory).resolve()) if inventory else None,
        "cluster": cluster,
        "command": command,
        "args": args,
        "user": getpass.getuser(),
        "machine": socket.gethostname(),
        "started": started,
        "finished": now_iso(),
        "outcome": outcome,
        "hosts": [r.as_json() for r in reports],
    }


def append_local(record: dict[str, Any], path: Path | None = None) -> Path:
    """Append one line; a single O_APPEND write keeps concurrent runs from interleaving."""
    path = path or local_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return path


def append_remote(remote: Connection, record: dict[str, Any], report: HostReport) -> None:
    """The host's own line, after marking the generation this run verified there (so
    both records say whether it was verified)."""
    report.verified = verified.mark(remote, report, str(record.get("id", "?")))
    own = {**{k: v for k, v in record.items() if k != "hosts"}, "host": report.as_json()}
    # best effort: the local record has it all; the host's copy is a convenience
    with contextlib.suppress(RemoteError):
        remote.run(
            script(_APPEND, REMOTE_RECORD),
            stdin=(json.dumps(own, sort_keys=True) + "\n").encode(),
            timeout=15,
            what="write the host's deploy record",
        )


def read_local(path: Path | None = None) -> list[dict[str, Any]]:
    path = path or local_path()
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            from hydradeploy.errors import UserError

            raise UserError(f"{path}:{n}: not a JSON line") from None
    return out
