"""Deploy order: the cluster-init server first, the other servers one at a time, then
the agents in waves of at most `max_parallel` (inventory order inside each)."""

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
    for h in servers:
        out.append(Wave(len(out) + 1, "server", (h,)))
    for i in range(0, len(agents), max_parallel):
        out.append(Wave(len(out) + 1, "agents", tuple(agents[i : i + max_parallel])))
    return out
