"""node-ready after an activation: the node's Lease must be renewed after the
activation ended (deploy/checks.py), whether or not k3s restarted."""

from __future__ import annotations

import json
from typing import Any

from hydradeploy.deploy import checks

END = 1_800_000_000.0  # the guard's whole-second activation end


def ready_node(heartbeat: str = "2027-01-15T08:00:00Z") -> dict[str, Any]:
    return {"metadata": {"name": "w1", "labels": {}}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True",
                                       "lastHeartbeatTime": heartbeat}]}}  # fmt: skip


def ready_check(
    leases: dict[str, float] | None, node: dict[str, Any] | None = None
) -> Any:
    results = checks.node_checks("w1", {"labels": {}, "taints": []}, {"w1": node or ready_node()},
                                 reference_version=None, fresh_since=END, leases=leases)  # fmt: skip
    return next(r for r in results if r.name == "node-ready")


def test_a_lease_renewed_in_a_later_second_counts() -> None:
    assert ready_check({"w1": END + 1.2}).ok


def test_a_renewal_in_the_same_second_as_the_end_does_not() -> None:
    # The end is known to the second: a renewal at END + 0.5 may precede it.
    bad = ready_check({"w1": END + 0.5})
    assert not bad.ok and "stale Lease kube-node-lease/w1" in bad.detail
    # and the message does not claim an end that precedes the renewal it shows
    assert (
        "ended in the second 08:00:00 UTC; a renewal counts from 08:00:01.000"
        in bad.detail
    )
    assert bad.detail.endswith("(last renewal 08:00:00.500 UTC)")


def test_a_stale_lease_is_named_even_when_the_status_was_posted() -> None:
    # The lease fault: status posted after the activation, Lease never renewed.
    bad = ready_check({"w1": END - 30}, ready_node("2027-01-15T08:00:00Z"))
    assert not bad.ok
    assert (
        "stale Lease kube-node-lease/w1: not renewed since the activation" in bad.detail
    )
    assert ready_check({}).detail.endswith("(last renewal never)")


def test_not_ready_with_a_stale_lease_names_both() -> None:
    node = ready_node()
    node["status"]["conditions"][0].update(status="Unknown", reason="NodeStatusUnknown")
    bad = ready_check({"w1": END - 30}, node)
    assert "Ready=Unknown" in bad.detail and "stale Lease" in bad.detail


def test_without_leases_the_ready_heartbeat_stands_in() -> None:
    later = "2027-01-15T08:00:05Z"  # END is 2027-01-15T08:00:00Z
    assert ready_check(None, ready_node(later)).ok
    assert not ready_check(None, ready_node("2020-01-01T00:00:00Z")).ok


def test_lease_list_parsing() -> None:
    text = json.dumps({"items": [
        {"metadata": {"name": "w1"}, "spec": {"renewTime": "2027-01-15T08:00:00.250000Z"}},
        {"metadata": {"name": "w2"}, "spec": {}},
    ]})  # fmt: skip
    got = checks.lease_renewals(text)
    assert got is not None and set(got) == {"w1"}
    assert got["w1"] % 1 == 0.25
    assert (
        checks.lease_renewals("error: the server doesn't have a resource type") is None
    )
