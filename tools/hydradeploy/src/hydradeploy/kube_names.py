"""Kubernetes name rules (DNS-1123 labels, label keys and values, taints).

Shared by the inventory validation and the converter, so both reject exactly what the
Kubernetes API server would.
"""

from __future__ import annotations

import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

# Node annotations where `hydradeploy nodes sync` records the label keys and taints
# (KEY:EFFECT) it manages, comma-separated; anything else on a node is someone else's.
MANAGED_LABELS = "hydra.io/managed-labels"
MANAGED_TAINTS = "hydra.io/managed-taints"

# Labels a kubelet may set on its own node inside the kubernetes.io / k8s.io namespaces
# (NodeRestriction admission); k3s passes --node-label to the kubelet, so anything else
# there is refused when the node registers.
KUBELET_ALLOWED_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    }
)
KUBELET_ALLOWED_PREFIXES = ("kubelet.kubernetes.io/", "node.kubernetes.io/")


def is_dns1123_label(name: str) -> bool:
    return len(name) <= 63 and DNS1123_LABEL.fullmatch(name) is not None


def label_key_error(key: str) -> str | None:
    """Why `key` is not a valid label (or taint) key, or None when it is."""
    if not key:
        return "empty key"
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return f"prefix {prefix!r} is not a DNS subdomain"
    if not name or len(name) > 63 or not LABEL_NAME.fullmatch(name):
        return f"name part {name!r} must be 1-63 characters of [A-Za-z0-9-_.], alphanumeric at both ends"
    return None


def label_value_error(value: str) -> str | None:
    if value == "":
        return None
    if len(value) > 63 or not LABEL_NAME.fullmatch(value):
        return f"value {value!r} must be at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends"
    return None


def node_label_error(key: str, value: str) -> str | None:
    """Label rules plus the NodeRestriction rule for labels a node sets on itself."""
    err = label_key_error(key) or label_value_error(value)
    if err:
        return err
    prefix = key.rpartition("/")[0]
    restricted = prefix in ("kubernetes.io", "k8s.io") or prefix.endswith(
        (".kubernetes.io", ".k8s.io")
    )
    if (
        restricted
        and key not in KUBELET_ALLOWED_LABELS
        and not key.startswith(KUBELET_ALLOWED_PREFIXES)
    ):
        return f"{key!r} is in a namespace a node may not label itself with (NodeRestriction)"
    return None


def parse_taint(spec: str) -> tuple[str, str, str]:
    """Parse `key[=value]:Effect`; raise ValueError with the reason."""
    body, colon, effect = spec.rpartition(":")
    if not colon:
        raise ValueError(f"taint {spec!r} needs the form key[=value]:Effect")
    if effect not in TAINT_EFFECTS:
        raise ValueError(
            f"taint {spec!r} has effect {effect!r}, not one of {', '.join(TAINT_EFFECTS)}"
        )
    key, _eq, value = body.partition("=")
    err = label_key_error(key) or label_value_error(value)
    if err:
        raise ValueError(f"taint {spec!r}: {err}")
    return key, value, effect
