"""One deploy or rollback run, from the chosen hosts to the written record: what the
`deploy` and `rollback` commands call (they only parse and render)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from hydradeploy.deploy import record
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

    @property
    def interrupted(self) -> bool:
        return self.outcome == "interrupted"

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.run_id,
            "outcome": self.outcome,
            "record": str(self.record),
            "hosts": [r.as_json() for r in self.reports],
        }


def run(
    inv: Inventory,
    command: str,
    hosts: list[Host],
    opts: Options,
    closures: dict[str, Closure] | None = None,
    *,
    quiet: bool = False,
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
    try:
        with progress:
            reports = engine.run(hosts, closures)
    except KeyboardInterrupt:
        interrupted = True
        reports = list(engine.last_reports)
    outcome = "interrupted" if interrupted else ("ok" if all(r.ok for r in reports) else "failed")
    rec = record.entry(run_id, command, started, reports, outcome, sys.argv[1:], **where)
    return RunResult(run_id, outcome, record.append_local(rec), reports)
