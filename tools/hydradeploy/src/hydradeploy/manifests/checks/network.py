"""NetworkPolicies: default deny, and ipBlocks that mean what they say."""

from __future__ import annotations

import ipaddress

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree


@check("network")
def check_network(t: Tree) -> list[Problem]:
    """Each app namespace has a default-deny policy; wide ipBlocks exclude the cluster's
    pod and service CIDRs; single-host blocks name inventory addresses."""
    out = []
    inv = t.inventory
    cluster = {
        ipaddress.ip_network(inv.cluster.cluster_cidr),
        ipaddress.ip_network(inv.cluster.service_cidr),
    }
    known_hosts = {s.address for s in inv.storage.values()} | {
        h.address for h in inv.hosts.values()
    }
    for ns in t.of_kind("Namespace"):
        if ns.labels().get("hydra.io/tier") != "apps":
            continue
        denies = [
            d
            for d in t.of_kind("NetworkPolicy")
            if d.namespace == ns.name
            and d.spec.get("podSelector") == {}
            and set(d.spec.get("policyTypes") or []) == {"Ingress", "Egress"}
            and not d.spec.get("ingress")
            and not d.spec.get("egress")
        ]
        if not denies:
            out.append(
                Problem(
                    str(ns),
                    "network",
                    f"app namespace {ns.name} has no default-deny NetworkPolicy",
                )
            )
    for d in t.of_kind("NetworkPolicy"):
        for rule in (d.spec.get("egress") or []) + (d.spec.get("ingress") or []):
            for peer in (rule.get("to") or []) + (rule.get("from") or []):
                block = peer.get("ipBlock")
                if not block:
                    continue
                net = ipaddress.ip_network(block["cidr"], strict=False)
                excepted = {
                    ipaddress.ip_network(e, strict=False) for e in block.get("except") or []
                }
                for c in cluster:
                    if _within(c, net) and not any(_within(c, e) for e in excepted):
                        out.append(
                            Problem(
                                str(d),
                                "network",
                                f"ipBlock {net} includes the cluster range {c} without excepting it: it would bypass the namespace policies",
                            )
                        )
                if net.num_addresses == 1 and str(net.network_address) not in known_hosts:
                    out.append(
                        Problem(
                            str(d),
                            "network",
                            f"ipBlock {net} is not an inventory host or storage address",
                        )
                    )
    return out


def _within(
    a: ipaddress.IPv4Network | ipaddress.IPv6Network,
    b: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> bool:
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]
