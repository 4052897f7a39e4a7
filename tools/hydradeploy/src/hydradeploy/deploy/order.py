"""Deploy order, as stages: the cluster-init server first, the other servers one at a
time, then every agent in one stage where at most `max_parallel` hosts are activated
and not yet verified at any moment (a sliding window, inventory order first).

A stage starts activating only when every host of the stages before it has finished;
what changes nothing on a host (connect, preflight, lock, copy) may run ahead of that
(engine.Engine, docs/deploy.md "Order")."""

from __future__ import annotations

from collections.abc import Sequence

from hydradeploy.deploy.models import Wave
from hydradeploy.inventory import Host

DEFAULT_MAX_PARALLEL = 4


def waves(hosts: Sequence[Host], max_parallel: int = DEFAULT_MAX_PARALLEL) -> list[Wave]:
    if max_parallel < 1:
        raise ValueError("max_parallel must be at least 1")
    out: list[Wave] = []
    init = [h for h in hosts if h.is_server and h.cluster_init]
    servers = [h for h in hosts if h.is_server and not h.cluster_init]
    agents = [h for h in hosts if not h.is_server]
    for h in init:
        out.append(Wave(len(out) + 1, "cluster-init", (h,)))
    for h in servers:  # one at a time: etcd quorum is never at risk
        out.append(Wave(len(out) + 1, "server", (h,)))
    if agents:
        out.append(Wave(len(out) + 1, "agents", tuple(agents), window=max_parallel))
    return out


# Where a host is in a deploy (Schedule): waiting its turn to prepare, preparing
# (connect … copy), prepared and waiting for an activation slot, activated and not yet
# verified (holding a slot), verified or given up but still writing its record, done.
QUEUED, PREPARING, READY, ACTIVE, CLOSING, DONE = (
    "queued", "preparing", "ready", "active", "closing", "done",
)  # fmt: skip


class Schedule:
    """Which host may prepare, and which may activate, next. Pure bookkeeping: the
    engine calls it under one lock and does the waiting.

    - `to_prepare`: hosts start preparing in deploy order while fewer than `ahead` are
      preparing or prepared-and-waiting (the copies never split the uplink more than
      `ahead` ways, and a failure wastes at most `ahead` copies);
    - `to_activate`: prepared hosts of the current stage, inventory order first, while
      fewer than the stage's `window` are activated and not yet verified;
    - `advance`: the next stage only once every host of the current one is done;
    - `stop`: nothing more is prepared or activated (hosts in flight finish)."""

    def __init__(self, waves: Sequence[Wave], ahead: int) -> None:
        if ahead < 1:
            raise ValueError("ahead must be at least 1")
        self.waves = list(waves)
        self.ahead = ahead
        self.order = [h.name for w in self.waves for h in w.hosts]
        self.wave_of = {h.name: i for i, w in enumerate(self.waves) for h in w.hosts}
        self.state = dict.fromkeys(self.order, QUEUED)
        self.stage = -1  # no stage entered yet: the engine runs its gate first
        self.stopped = ""  # why nothing more starts ("" while running)

    def count(self, *states: str, stage: int | None = None) -> int:
        return sum(
            1
            for n in self.order
            if self.state[n] in states and (stage is None or self.wave_of[n] == stage)
        )

    def to_prepare(self) -> list[str]:
        out: list[str] = []
        if self.stopped:
            return out
        room = self.ahead - self.count(PREPARING, READY)
        for n in self.order:
            if room <= 0:
                break
            if self.state[n] == QUEUED:
                self.state[n] = PREPARING
                out.append(n)
                room -= 1
        return out

    def ready(self, name: str) -> None:
        self.state[name] = READY

    def to_activate(self) -> list[str]:
        out: list[str] = []
        if self.stopped or self.stage < 0 or self.stage >= len(self.waves):
            return out
        room = self.waves[self.stage].window - self.count(ACTIVE, stage=self.stage)
        for n in self.order:
            if room <= 0:
                break
            if self.wave_of[n] == self.stage and self.state[n] == READY:
                self.state[n] = ACTIVE
                out.append(n)
                room -= 1
        return out

    def release(self, name: str) -> None:
        """Verified, rolled back or given up: the slot is free (the record follows)."""
        if self.state[name] == ACTIVE:
            self.state[name] = CLOSING

    def done(self, name: str) -> None:
        self.state[name] = DONE

    def stage_done(self) -> bool:
        """Every host of the current stage is done (before the first stage: true)."""
        if self.stage < 0:
            return True
        if self.stage >= len(self.waves):
            return False
        return all(self.state[h.name] == DONE for h in self.waves[self.stage].hosts)

    def next_wave(self) -> Wave | None:
        return self.waves[self.stage + 1] if self.stage + 1 < len(self.waves) else None

    def advance(self) -> None:
        self.stage += 1

    def stop(self, reason: str) -> list[str]:
        """Start nothing more; returns the prepared hosts that will now not activate."""
        if not self.stopped:
            self.stopped = reason
        return [n for n in self.order if self.state[n] == READY]

    def finished(self) -> bool:
        """Nothing left running, and nothing left that may still start."""
        if self.count(PREPARING, READY, ACTIVE, CLOSING):
            return False
        return bool(self.stopped) or (self.count(QUEUED) == 0 and self.stage >= len(self.waves))
