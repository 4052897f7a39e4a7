"""One deploy or rollback run, from the chosen hosts to the written record: what the
`deploy` and `rollback` commands call (they only parse and render)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydradeploy.deploy import record, signals
from hydradeploy.deploy.engine import Engine, Options
from hydradeploy.deploy.models import Closure, HostReport
from hydradeploy.deploy.progress import Progress
from hydradeploy.inventory import Host, Inventory


@dataclass
class RunResult:
    run_id: str
    outcome: str  # ok | failed | interrupted
    record: Path
    reports: list[HostReport] = field(default_factory=list)
    pruned: list[Any] | None = None  # `deploy --prune`: what prune did (docs/prune.md)
    signal: int | None = None  # what interrupted the run (SIGINT, SIGTERM, SIGHUP)

    @property
    def interrupted(self) -> bool:
        return self.outcome == "interrupted"

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.run_id,
            "outcome": self.outcome,
            "record": str(self.record),
            "hosts": [r.as_json() for r in self.reports],
            **({"pruned": [i.as_json() for i in self.pruned]} if self.pruned is not None else {}),
        }


def run(
    inv: Inventory,
    command: str,
    hosts: list[Host],
    opts: Options,
    closures: dict[str, Closure] | None = None,
    *,
    quiet: bool = False,
    prune: bool = False,
) -> RunResult:
    """Deploy (or roll back to `closures`) `hosts`; the record is written on every exit
    path, Ctrl-C included (the caller re-raises when `interrupted`)."""
    run_id = record.new_run_id()
    started = record.now_iso()
    where = {"inventory": str(inv.path), "cluster": inv.cluster.name}
    progress = Progress([h.name for h in hosts], quiet=quiet)
    engine = Engine(inv, opts, progress, run_id)
    engine.record_meta = {
        k: v
        for k, v in record.entry(run_id, command, started, [], "", sys.argv[1:], **where).items()
        if k not in ("hosts", "outcome")
    }
    interrupted = False
    # SIGTERM/SIGHUP like SIGINT, for the rest of the command (a late one must not kill
    # it while it writes the record); a second one never skips a rollback (signals.py)
    intr = signals.install()
    try:
        with progress, intr.raising():
            reports = engine.run(hosts, closures)
    except KeyboardInterrupt:
        interrupted = True
        reports = list(engine.last_reports)
    outcome = "interrupted" if interrupted else ("ok" if all(r.ok for r in reports) else "failed")
    pruned = _prune_after(inv, reports, quiet) if prune and not interrupted else None
    rec = record.entry(run_id, command, started, reports, outcome, sys.argv[1:], **where)
    if pruned is not None:  # what `deploy --prune` deleted (docs/prune.md)
        rec["pruned"] = [i.as_json() for i in pruned]
    path = record.append_local(rec)
    return RunResult(run_id, outcome, path, reports, pruned, intr.signum if interrupted else None)


def _prune_after(inv: Inventory, reports: list[HostReport], quiet: bool) -> list[Any] | None:
    """`deploy --prune`: prune on the cluster-init server once every server of this run
    was deployed and passed its checks; None (and a note) when one did not."""
    from hydradeploy.deploy.prune_cli import run_on
    from hydradeploy.errors import OperationFailed

    bad = [r.host for r in reports if inv.host(r.host).is_server and not r.ok]
    if bad:
        print(
            f"prune: skipped, server {', '.join(bad)} was not deployed and checked", file=sys.stderr
        )
        return None
    if not quiet:
        print(f"prune: on {inv.cluster_init.name}", file=sys.stderr)
    try:
        others = [h for h in inv.servers if not h.cluster_init]
        return run_on(inv.cluster_init, others, include_data=False, dry_run=False)
    except OperationFailed as exc:
        print(f"hydradeploy: {exc}", file=sys.stderr)
        return None
