"""Validation of a parsed inventory: every problem as an `Issue(code, path, message)`.

One small function per table, as in modules/lib/inventory.nix (tests/nix checks that
both report the same `code` and `path` on good and bad inventories); the vocabulary
(keys, required keys, enums, reserved labels) comes from inventory_schema.toml.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hydradeploy.inventory_schema import (
    DISABLEABLE,
    FLANNEL_BACKENDS,
    GPU_VENDORS,
    ROLES,
    TABLES,
    is_target_host,
    reserved_label,
    reserved_taint,
)
from hydradeploy.kube_names import is_dns1123_label, node_label_error, parse_taint

TAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Issue:
    code: str
    path: str
    message: str
    # the line of the inventory file it points at, when known (inventory_lines.py)
    line: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


class Checker:
    """Collects issues; the generic checks every table uses."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []
        # (value, path) claims: a value claimed twice is reported at every claimant, so
        # the verdict does not depend on table order (Nix sees tables sorted by name).
        self.names: list[tuple[str, str]] = []
        self.addresses: list[tuple[str, str]] = []

    def add(self, code: str, path: str, message: str) -> None:
        self.issues.append(Issue(code, path, message))

    def table(self, value: Any, path: str, spec: str) -> dict[str, Any] | None:
        """The table, after reporting its unknown and missing keys; None if not a table."""
        if not isinstance(value, dict):
            self.add("wrong-type", path, "must be a table")
            return None
        allowed, required = TABLES[spec].allowed, TABLES[spec].required
        for key in sorted(set(value) - allowed):
            self.add(
                "unknown-key",
                join(path, key),
                f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
            )
        for key in sorted(required - set(value)):
            self.add("missing-field", join(path, key), f"missing required key {key!r}")
        return value

    def typed(self, table: Mapping[str, Any], key: str, path: str, kind: type, what: str) -> bool:
        """Whether table[key] exists and has the type; reports it when it has not."""
        if key not in table:
            return False
        value = table[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            self.add("wrong-type", join(path, key), f"must be {what}")
        return ok

    def indexed_strings(
        self, table: Mapping[str, Any], key: str, path: str
    ) -> list[tuple[int, str]]:
        """The strings of a list with their index (for issue paths); others reported."""
        if not self.typed(table, key, path, list, "a list of strings"):
            return []
        out = []
        for i, item in enumerate(table[key]):
            if isinstance(item, str):
                out.append((i, item))
            else:
                self.add("wrong-type", join(path, key, str(i)), "must be a string")
        return out

    def positive_int(self, table: Mapping[str, Any], key: str, path: str) -> None:
        if self.typed(table, key, path, int, "an integer") and table[key] < 1:
            self.add("bad-value", join(path, key), "must be at least 1")

    def address(self, table: Mapping[str, Any], path: str) -> None:
        """Checks `address` and claims it (duplicates are reported at the end)."""
        if not self.typed(table, "address", path, str, "an IP address string"):
            return
        try:
            ipaddress.ip_address(table["address"])
        except ValueError:
            self.add(
                "bad-value", join(path, "address"), f"{table['address']!r} is not an IP address"
            )
            return
        self.addresses.append((str(table["address"]), join(path, "address")))

    def duplicates(self, code: str, what: str, claims: list[tuple[str, str]]) -> None:
        by_value: dict[str, list[str]] = {}
        for value, path in claims:
            by_value.setdefault(value, []).append(path)
        for value, paths in by_value.items():
            if len(paths) > 1:
                for path in paths:
                    self.add(
                        code,
                        path,
                        f"{what} {value!r} is used {len(paths)} times ({', '.join(paths)})",
                    )


# ----------------------------------------------------------------------------- fields


def check_labels(c: Checker, table: Mapping[str, Any], path: str) -> None:
    if not c.typed(table, "labels", path, dict, "a table of strings"):
        return
    for key, value in table["labels"].items():
        lpath = join(path, "labels", key)
        if not isinstance(value, str):
            c.add("wrong-type", lpath, "label values must be strings")
            continue
        reserved = reserved_label(key)
        if reserved is not None:
            c.add(
                "reserved-label",
                lpath,
                f"label {key!r} is not the inventory's to set: {reserved.owner}",
            )
            continue
        err = node_label_error(key, value)
        if err:
            c.add("bad-label", lpath, err)


def check_taints(c: Checker, table: Mapping[str, Any], path: str) -> None:
    seen: dict[tuple[str, str], int] = {}
    for i, spec in c.indexed_strings(table, "taints", path):
        try:
            key, _value, effect = parse_taint(spec)
        except ValueError as exc:
            c.add("bad-taint", join(path, "taints", str(i)), str(exc))
            continue
        reserved = reserved_taint(key)
        if reserved is not None:
            c.add(
                "reserved-taint",
                join(path, "taints", str(i)),
                f"taint key {key!r} is not the inventory's to set: {reserved.owner}",
            )
            continue
        # the API server refuses a node with two taints of the same key and effect
        if (key, effect) in seen:
            c.add(
                "bad-taint",
                join(path, "taints", str(i)),
                f"taint {spec!r} repeats key {key!r} with effect {effect} (taints.{seen[key, effect]})",
            )
        else:
            seen[key, effect] = i


def check_target_host(c: Checker, host: Mapping[str, Any], path: str) -> None:
    if c.typed(host, "target_host", path, str, "a host name or IP address") and not (
        is_target_host(host["target_host"])
    ):
        c.add(
            "bad-value",
            join(path, "target_host"),
            f"{host['target_host']!r} is not a DNS name or IP address",
        )


# ----------------------------------------------------------------------------- tables


def check_cluster(c: Checker, data: Any) -> None:
    p = "cluster"
    cluster = c.table(data, p, "cluster")
    if cluster is None:
        return
    if c.typed(cluster, "name", p, str, "a string") and not is_dns1123_label(cluster["name"]):
        c.add("bad-name", "cluster.name", f"{cluster['name']!r} is not a DNS-1123 label")
    if c.typed(cluster, "api_endpoint", p, str, "a URL string") and not re.fullmatch(
        r"^https://[^/\s]+:\d+$", cluster["api_endpoint"]
    ):
        c.add("bad-value", "cluster.api_endpoint", "must look like https://ADDRESS:6443")
    for key in ("cluster_cidr", "service_cidr"):
        if c.typed(cluster, key, p, str, "a CIDR string"):
            try:
                ipaddress.ip_network(cluster[key])
            except ValueError:
                c.add("bad-value", join(p, key), f"{cluster[key]!r} is not a CIDR")
    if (
        c.typed(cluster, "flannel_backend", p, str, "a string")
        and cluster["flannel_backend"] not in FLANNEL_BACKENDS
    ):
        c.add(
            "bad-value", "cluster.flannel_backend", f"must be one of {', '.join(FLANNEL_BACKENDS)}"
        )
    for i, item in c.indexed_strings(cluster, "disable", p):
        if item not in DISABLEABLE:
            c.add(
                "bad-value",
                f"cluster.disable.{i}",
                f"{item!r} is not a k3s component that can be disabled ({', '.join(DISABLEABLE)})",
            )
    c.typed(cluster, "etcd_snapshot_schedule", p, str, "a cron string")
    c.positive_int(cluster, "etcd_snapshot_retention", p)
    if c.typed(cluster, "admin_user", p, str, "a string") and not re.fullmatch(
        r"^[a-z_][a-z0-9_-]*$", cluster["admin_user"]
    ):
        c.add("bad-value", "cluster.admin_user", "is not a valid user name")
    c.indexed_strings(cluster, "admin_keys", p)


def check_ssh(c: Checker, data: Any, path: str) -> None:
    s = c.table(data, path, "ssh")
    if s is None:
        return
    c.typed(s, "user", path, str, "a string")
    if c.typed(s, "port", path, int, "an integer") and not 0 < s["port"] < 65536:
        c.add("bad-value", join(path, "port"), "must be a TCP port (1-65535)")
    for key in ("key", "jump", "known_hosts", "host_key"):
        c.typed(s, key, path, str, "a string")
    c.typed(s, "sudo", path, bool, "true or false")


def check_storage(c: Checker, name: str, data: Any) -> set[str] | None:
    """The storage's exports, or None when it is not a table."""
    path = f"storage.{name}"
    s = c.table(data, path, "storage")
    if s is None:
        return None
    if not is_dns1123_label(name):
        c.add("bad-name", path, f"{name!r} is not a DNS-1123 label")
    c.names.append((name, path))
    c.address(s, path)
    return {e for _, e in c.indexed_strings(s, "exports", path)}


def check_gpu(c: Checker, data: Any, path: str) -> None:
    g = c.table(data, path, "gpu")
    if g is None:
        return
    if c.typed(g, "vendor", path, str, "a string") and g["vendor"] not in GPU_VENDORS:
        c.add(
            "bad-value", join(path, "vendor"), f"GPU vendor {g['vendor']!r} must be nvidia or amd"
        )
    c.typed(g, "model", path, str, "a string")
    for key in ("count", "vram_gb"):
        c.positive_int(g, key, path)


def check_nfs(c: Checker, data: Any, path: str, exports: Mapping[str, set[str]]) -> None:
    n = c.table(data, path, "nfs")
    if n is None:
        return
    c.typed(n, "read_only", path, bool, "true or false")
    if c.typed(n, "mountpoint", path, str, "an absolute path") and not n["mountpoint"].startswith(
        "/"
    ):
        c.add("bad-value", join(path, "mountpoint"), "must be an absolute path")
    server_ok = c.typed(n, "server", path, str, "a storage name")
    export_ok = c.typed(n, "export", path, str, "a path")
    if not (server_ok and export_ok):
        return
    if n["server"] not in exports:
        c.add(
            "unknown-storage", join(path, "server"), f"no [storage.{n['server']}] in the inventory"
        )
    elif n["export"] not in exports[n["server"]]:
        c.add(
            "unknown-export", join(path, "export"), f"{n['server']} does not export {n['export']}"
        )


def check_microvm(c: Checker, data: Any, path: str) -> None:
    v = c.table(data, path, "microvm")
    if v is None:
        return
    if c.typed(v, "name", path, str, "a string"):
        if not is_dns1123_label(v["name"]):
            c.add("bad-name", join(path, "name"), f"{v['name']!r} is not a DNS-1123 label")
        c.names.append((v["name"], join(path, "name")))
    c.address(v, path)
    for key in ("vcpu", "memory_mb"):
        c.positive_int(v, key, path)
    check_labels(c, v, path)
    check_taints(c, v, path)


def check_host_lists(
    c: Checker, h: Mapping[str, Any], path: str, exports: Mapping[str, set[str]]
) -> None:
    """The host's gpus, nfs and microvms lists."""
    if c.typed(h, "gpus", path, list, "a list of tables"):
        for i, g in enumerate(h["gpus"]):
            check_gpu(c, g, join(path, "gpus", str(i)))
    if c.typed(h, "nfs", path, list, "a list of tables"):
        for i, n in enumerate(h["nfs"]):
            check_nfs(c, n, join(path, "nfs", str(i)), exports)
        c.duplicates(
            "duplicate-mountpoint",
            "mountpoint",
            [
                (n["mountpoint"], join(path, "nfs", str(i), "mountpoint"))
                for i, n in enumerate(h["nfs"])
                if isinstance(n, dict) and isinstance(n.get("mountpoint"), str)
            ],
        )
    if c.typed(h, "microvms", path, list, "a list of tables"):
        for i, v in enumerate(h["microvms"]):
            check_microvm(c, v, join(path, "microvms", str(i)))


def check_host(c: Checker, name: str, data: Any, exports: Mapping[str, set[str]]) -> None:
    path = f"hosts.{name}"
    h = c.table(data, path, "host")
    if h is None:
        return
    if not is_dns1123_label(name):
        c.add(
            "bad-name",
            path,
            f"host name {name!r} is not a DNS-1123 label (it becomes the node name)",
        )
    c.names.append((name, path))
    c.address(h, path)
    check_target_host(c, h, path)
    if c.typed(h, "role", path, str, "a string") and h["role"] not in ROLES:
        c.add("bad-value", join(path, "role"), f"role {h['role']!r} must be server or agent")
    if (
        c.typed(h, "cluster_init", path, bool, "true or false")
        and h["cluster_init"]
        and h.get("role") != "server"
    ):
        c.add(
            "cluster-init-not-server",
            join(path, "cluster_init"),
            "only a server can initialise the cluster",
        )
    c.typed(h, "system", path, str, "a system string such as x86_64-linux")
    for i, tag in c.indexed_strings(h, "tags", path):
        if not TAG_RE.fullmatch(tag):
            c.add(
                "bad-value",
                join(path, "tags", str(i)),
                f"tag {tag!r} must be lowercase letters, digits and dashes",
            )
    check_labels(c, h, path)
    check_taints(c, h, path)
    if c.typed(h, "rocm_gfx_version", path, str, "a version string") and not re.fullmatch(
        r"^\d+\.\d+\.\d+$", h["rocm_gfx_version"]
    ):
        c.add(
            "bad-value",
            join(path, "rocm_gfx_version"),
            "must look like 11.0.0 (HSA_OVERRIDE_GFX_VERSION)",
        )
    if "ssh" in h:
        check_ssh(c, h["ssh"], join(path, "ssh"))
    check_host_lists(c, h, path, exports)


def check_cluster_shape(c: Checker, hosts: Mapping[str, Any]) -> None:
    """Exactly one cluster-init server; agents need a server."""
    tables = {n: h for n, h in hosts.items() if isinstance(h, dict)}
    inits = [n for n, h in tables.items() if h.get("cluster_init") is True]
    roles = {n: h["role"] for n, h in tables.items() if h.get("role") in ROLES}
    if not inits:
        c.add("no-cluster-init", "hosts", "no server has cluster_init = true (exactly one must)")
    elif len(inits) > 1:
        c.add(
            "many-cluster-init",
            "hosts",
            f"{len(inits)} servers have cluster_init = true ({', '.join(inits)}); exactly one must",
        )
    if "server" not in roles.values():
        for name, role in roles.items():
            if role == "agent":
                c.add(
                    "agent-without-server",
                    f"hosts.{name}",
                    'agent has no server to join (no host has role = "server")',
                )


def validate(data: Any) -> list[Issue]:
    """Every problem of a parsed inventory, in a stable order."""
    c = Checker()
    top = c.table(data, "", "top")
    if top is None:
        return c.issues
    check_cluster(c, top.get("cluster", {}))
    if "ssh" in top:
        check_ssh(c, top["ssh"], "ssh")
    storage = top.get("storage", {})
    exports: dict[str, set[str]] = {}
    if isinstance(storage, dict):
        for name, s in storage.items():
            found = check_storage(c, name, s)
            if found is not None:
                exports[name] = found
    else:
        c.add("wrong-type", "storage", "must be a table")
    hosts = top.get("hosts", {})
    if not isinstance(hosts, dict):
        c.add("wrong-type", "hosts", "must be a table")
    else:
        if not hosts and "hosts" in top:
            c.add("no-hosts", "hosts", "the inventory declares no hosts")
        for name, h in hosts.items():
            check_host(c, name, h, exports)
        if hosts:
            check_cluster_shape(c, hosts)
    c.duplicates("duplicate-name", "name", c.names)
    c.duplicates("duplicate-address", "address", c.addresses)
    return c.issues
