"""The inventory's vocabulary, read from inventory_schema.toml: the keys each table may
and must hold, the enums, the GPU resources and the node labels k3s or the kubelet own.
modules/lib/inventory.nix reads the same file, so the two validators cannot drift."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class TableSpec:
    allowed: frozenset[str]
    required: frozenset[str]


@dataclass(frozen=True)
class ReservedLabel:
    """A label (or taint) key, or key prefix, that k3s or Kubernetes owns."""

    owner: str
    key: str | None = None
    prefix: str | None = None

    def matches(self, key: str) -> bool:
        return key == self.key or (self.prefix is not None and key.startswith(self.prefix))


def _load() -> dict[str, Any]:
    text = resources.files("hydradeploy").joinpath("inventory_schema.toml").read_text("utf-8")
    return tomllib.loads(text)


_SCHEMA = _load()

TABLES: dict[str, TableSpec] = {
    name: TableSpec(frozenset(t["allowed"]), frozenset(t["required"]))
    for name, t in _SCHEMA["tables"].items()
}
ROLES: tuple[str, ...] = tuple(_SCHEMA["enums"]["role"])
GPU_VENDORS: tuple[str, ...] = tuple(_SCHEMA["enums"]["gpu_vendor"])
FLANNEL_BACKENDS: tuple[str, ...] = tuple(_SCHEMA["enums"]["flannel_backend"])
DISABLEABLE: tuple[str, ...] = tuple(_SCHEMA["enums"]["disable"])
GPU_RESOURCE: dict[str, str] = dict(_SCHEMA["gpu_resource"])
RESERVED_LABELS: tuple[ReservedLabel, ...] = tuple(
    ReservedLabel(owner=r["owner"], key=r.get("key"), prefix=r.get("prefix"))
    for r in _SCHEMA["reserved_labels"]
)


RESERVED_TAINTS: tuple[ReservedLabel, ...] = tuple(
    ReservedLabel(owner=r["owner"], prefix=r["prefix"]) for r in _SCHEMA["reserved_taints"]
)


def reserved_taint(key: str) -> ReservedLabel | None:
    """The entry that reserves taint key `key` for a controller, or None."""
    return next((r for r in RESERVED_TAINTS if r.matches(key)), None)


def reserved_label(key: str) -> ReservedLabel | None:
    """The entry that reserves `key` for k3s or the kubelet, or None."""
    return next((r for r in RESERVED_LABELS if r.matches(key)), None)


# RFC 1123 host name: dot-separated labels of letters, digits and inner dashes, at most
# 253 characters; an optional final dot. The same expression as inventory.nix.
_HOSTNAME = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*[.]?$"
)


def is_target_host(value: str) -> bool:
    """A DNS name or an IP address: what `target_host` may hold (no spaces, no shell
    characters, nothing ssh could read as an option)."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return len(value) <= 253 and _HOSTNAME.fullmatch(value) is not None
