"""`status` and `check`: look at hosts (read-only) and evaluate their join checks.

A value that could not be learned (the host is unreachable, a probe failed, no server
answered) is None, never False: `status` shows it as `?` and JSON as null. `node` is
Ready, NotReady or absent (the node list was read and has no such node).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hydradeploy.deploy import checks, preflight, probe
from hydradeploy.inventory import Host, Inventory
from hydradeploy.transport import RemoteError
from hydradeploy.transport.pool import Pool


def _gpu_counts(node: dict[str, Any]) -> dict[str, int]:
    alloc = node.get("status", {}).get("allocatable", {}) or {}
    return {k: int(v) for k, v in alloc.items() if k.endswith("/gpu") and str(v).isdigit()}


def look(
    inv: Inventory, hosts: list[Host], check_timeout: float | None, pool: Pool | None = None
) -> list[dict[str, Any]]:
    """One row per host: generation, k3s, node state, GPUs, checks. The servers are
    connected too (they answer for the nodes)."""
    pool = pool or Pool(inv)
    wanted = {h.name for h in hosts} | {s.name for s in inv.servers}
    with pool:
        errors = pool.open_many(h for h in inv.hosts.values() if h.name in wanted)
        shared = checks.NodeSource(pool.kube_if_open())

        def row(h: Host) -> dict[str, Any]:
            own = pool.peek(h)
            base: dict[str, Any] = {
                "host": h.name, "role": h.role, "reachable": own is not None, "generation": None,
                "closure": None, "closure_age_s": None, "k3s_active": None, "node": None, "node_ready": None,
                "gpus_expected": h.gpu_resources(), "gpus_allocatable": None, "checks": [],
                "error": errors.get(h.name, ""),
            }  # fmt: skip
            st: probe.HostState | None = None
            if own is not None:
                try:
                    st = probe.probe(own)
                    base.update(
                        generation=st.generation,
                        closure=st.current,
                        closure_age_s=st.closure_age_s,
                        k3s_active=st.k3s == "active" if st.k3s else None,
                    )
                except RemoteError as exc:
                    base["error"] = str(exc)
            kube_h = checks.NodeSource(own) if h.is_server and own is not None else shared
            if check_timeout is None:
                facts = checks.collect(h, own, kube_h)
                results = checks.evaluate(h, inv, facts)
            else:
                results = checks.wait_healthy(h, inv, own, kube_h, timeout=check_timeout)
                facts = checks.collect(h, own, kube_h) if own is not None else checks.Facts()
            if facts.nodes is not None:
                # the node list was read: a missing node is known to be absent
                node = facts.nodes.get(h.name)
                ready = node is not None and checks.ready_status(node)[0] == "True"
                base["node_ready"] = ready
                base["node"] = "absent" if node is None else ("Ready" if ready else "NotReady")
                base["gpus_allocatable"] = _gpu_counts(node) if node is not None else {}
            if st is not None:  # profile and running system agree (issue 15)
                results = [*results, preflight.profile_check(st)]
            base["checks"] = [{"check": r.name, "ok": r.ok, "detail": r.detail} for r in results]
            return base

        with ThreadPoolExecutor(max_workers=8) as ex:
            return list(ex.map(row, hosts))
