"""The cluster inventory: hosts/inventory.toml read, validated and typed.

The same file is read by the flake (`builtins.fromTOML`, modules/lib/inventory.nix) and
the same rules are checked there; tests/nix compares both on good and bad inventories.
Each problem is an `Issue(code, path, message)`: `code` and `path` are what the two
implementations must agree on, `message` is for people.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydradeploy.errors import UserError
from hydradeploy.kube_names import is_dns1123_label, node_label_error, parse_taint
from hydradeploy.userfiles import read_user_text

ROLES = ("server", "agent")
GPU_VENDORS = ("nvidia", "amd")
GPU_RESOURCE = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
FLANNEL_BACKENDS = ("vxlan", "host-gw", "wireguard-native", "none")
DISABLEABLE = ("traefik", "servicelb", "local-storage", "metrics-server", "coredns")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")

# The keys each table may hold, with the ones that must be present.
CLUSTER_KEYS = {
    "name", "api_endpoint", "cluster_cidr", "service_cidr", "flannel_backend", "disable",
    "etcd_snapshot_schedule", "etcd_snapshot_retention", "admin_user", "admin_keys",
}  # fmt: skip
CLUSTER_REQUIRED = {"name"}
SSH_KEYS = {"user", "port", "key", "jump", "sudo", "known_hosts", "host_key"}
STORAGE_KEYS = {"address", "exports"}
STORAGE_REQUIRED = {"address", "exports"}
HOST_KEYS = {
    "address", "role", "cluster_init", "system", "tags", "labels", "taints", "gpus", "ssh",
    "nfs", "microvms", "rocm_gfx_version",
}  # fmt: skip
HOST_REQUIRED = {"address", "role"}
GPU_KEYS = {"vendor", "model", "vram_gb", "count"}
GPU_REQUIRED = {"vendor", "model", "count"}
NFS_KEYS = {"server", "export", "mountpoint", "read_only"}
NFS_REQUIRED = {"server", "export", "mountpoint"}
MICROVM_KEYS = {"name", "address", "vcpu", "memory_mb", "labels", "taints"}
MICROVM_REQUIRED = {"name", "address"}
TOP_KEYS = {"cluster", "ssh", "storage", "hosts"}
TOP_REQUIRED = {"cluster", "hosts"}


@dataclass(frozen=True)
class Issue:
    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class Gpu:
    vendor: str
    model: str
    count: int
    vram_gb: int | None = None

    @property
    def resource(self) -> str:
        return GPU_RESOURCE[self.vendor]


@dataclass(frozen=True)
class SSHSettings:
    user: str = "root"
    port: int = 22
    key: Path | None = None
    jump: str | None = None
    sudo: bool = False
    known_hosts: Path | None = None
    host_key: str | None = None


@dataclass(frozen=True)
class NfsMount:
    server: str
    export: str
    mountpoint: str
    read_only: bool = False


@dataclass(frozen=True)
class MicroVM:
    name: str
    address: str
    vcpu: int = 2
    memory_mb: int = 4096
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    role: str
    cluster_init: bool = False
    system: str = "x86_64-linux"
    tags: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[str, ...] = ()
    gpus: tuple[Gpu, ...] = ()
    ssh: SSHSettings = field(default_factory=SSHSettings)
    nfs: tuple[NfsMount, ...] = ()
    microvms: tuple[MicroVM, ...] = ()
    rocm_gfx_version: str | None = None

    @property
    def is_server(self) -> bool:
        return self.role == "server"

    def gpu_resources(self) -> dict[str, int]:
        """Allocatable GPU resources the node must advertise, e.g. {"nvidia.com/gpu": 2}."""
        out: dict[str, int] = {}
        for gpu in self.gpus:
            out[gpu.resource] = out.get(gpu.resource, 0) + gpu.count
        return out

    def all_tags(self) -> tuple[str, ...]:
        """Inventory tags plus implicit ones: the role, `gpu`, and each GPU vendor."""
        implicit = [self.role]
        if self.gpus:
            implicit.append("gpu")
            implicit.extend(sorted({g.vendor for g in self.gpus}))
        if self.cluster_init:
            implicit.append("cluster-init")
        if self.microvms:
            implicit.append("microvm-host")
        return tuple(dict.fromkeys([*self.tags, *implicit]))


@dataclass(frozen=True)
class Storage:
    name: str
    address: str
    exports: tuple[str, ...]


@dataclass(frozen=True)
class Cluster:
    name: str
    api_endpoint: str
    cluster_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    flannel_backend: str = "vxlan"
    disable: tuple[str, ...] = ()
    etcd_snapshot_schedule: str = "0 */6 * * *"
    etcd_snapshot_retention: int = 12
    admin_user: str = "hydra"
    admin_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inventory:
    path: Path
    cluster: Cluster
    hosts: Mapping[str, Host]
    storage: Mapping[str, Storage] = field(default_factory=dict)

    @property
    def cluster_init(self) -> Host:
        return next(h for h in self.hosts.values() if h.cluster_init)

    @property
    def servers(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.is_server]

    @property
    def agents(self) -> list[Host]:
        return [h for h in self.hosts.values() if not h.is_server]

    @property
    def embedded_etcd(self) -> bool:
        """k3s runs embedded etcd when a server was started with --cluster-init."""
        return any(h.cluster_init for h in self.hosts.values())

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            known = ", ".join(sorted(self.hosts))
            raise UserError(
                f"{self.path}: no host {name!r} in the inventory (hosts: {known})"
            ) from None

    def select(
        self, names: Iterable[str] = (), *, all_hosts: bool = False, tag: str | None = None
    ) -> list[Host]:
        """Hosts chosen by name, `--all` or `--on @TAG`, in inventory order."""
        chosen: dict[str, Host] = {}
        if all_hosts:
            chosen.update(self.hosts)
        if tag is not None:
            bare = tag.removeprefix("@")
            tagged = {n: h for n, h in self.hosts.items() if bare in h.all_tags()}
            if not tagged:
                raise UserError(f"{self.path}: no host carries the tag @{bare}")
            chosen.update(tagged)
        for name in names:
            if name.startswith("@"):
                chosen.update({h.name: h for h in self.select(tag=name)})
            else:
                chosen[name] = self.host(name)
        return [h for n, h in self.hosts.items() if n in chosen]

    def expected_nodes(self) -> dict[str, dict[str, Any]]:
        """Every k3s node the inventory declares (hosts and their microVMs), with the
        labels, taints and GPU resources it must show once joined."""
        nodes: dict[str, dict[str, Any]] = {}
        for host in self.hosts.values():
            nodes[host.name] = {
                "host": host.name,
                "role": host.role,
                "address": host.address,
                "labels": node_labels(host),
                "taints": sorted(host.taints),
                "gpus": host.gpu_resources(),
            }
            for vm in host.microvms:
                nodes[vm.name] = {
                    "host": host.name,
                    "role": "agent",
                    "address": vm.address,
                    "labels": {**dict(vm.labels), "hydra.io/microvm-host": host.name},
                    "taints": sorted(vm.taints),
                    "gpus": {},
                }
        return nodes


def node_labels(host: Host) -> dict[str, str]:
    """The labels k3s puts on the host's node: the inventory's, plus hydra.io/gpu-vendor
    and hydra.io/gpu-count derived from its GPUs (an explicit inventory label wins)."""
    derived: dict[str, str] = {}
    if host.gpus:
        vendors = sorted({g.vendor for g in host.gpus})
        derived["hydra.io/gpu-vendor"] = vendors[0] if len(vendors) == 1 else "mixed"
        derived["hydra.io/gpu-count"] = str(sum(g.count for g in host.gpus))
    return {**derived, **dict(host.labels)}


# ----------------------------------------------------------------------------- validation


class _Checker:
    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, code: str, path: str, message: str) -> None:
        self.issues.append(Issue(code, path, message))

    def table(
        self, value: Any, path: str, allowed: set[str], required: set[str]
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.add("wrong-type", path, "must be a table")
            return None
        for key in sorted(set(value) - allowed):
            self.add(
                "unknown-key",
                _join(path, key),
                f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
            )
        for key in sorted(required - set(value)):
            self.add("missing-field", _join(path, key), f"missing required key {key!r}")
        return value

    def typed(
        self,
        table: Mapping[str, Any],
        key: str,
        path: str,
        kind: type | tuple[type, ...],
        what: str,
    ) -> bool:
        if key not in table:
            return False
        value = table[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            self.add("wrong-type", _join(path, key), f"must be {what}")
        return ok

    def string_list(self, table: Mapping[str, Any], key: str, path: str) -> list[str]:
        if not self.typed(table, key, path, list, "a list of strings"):
            return []
        values = table[key]
        for i, item in enumerate(values):
            if not isinstance(item, str):
                self.add("wrong-type", _join(path, key, str(i)), "must be a string")
        return [v for v in values if isinstance(v, str)]

    def indexed_strings(
        self, table: Mapping[str, Any], key: str, path: str
    ) -> list[tuple[int, str]]:
        """The strings of a list with their index in the original list (for issue paths)."""
        self.string_list(table, key, path)
        values = table.get(key)
        if not isinstance(values, list):
            return []
        return [(i, v) for i, v in enumerate(values) if isinstance(v, str)]

    def address(self, table: Mapping[str, Any], path: str) -> str | None:
        if not self.typed(table, "address", path, str, "an IP address string"):
            return None
        try:
            ipaddress.ip_address(table["address"])
        except ValueError:
            self.add(
                "bad-value", _join(path, "address"), f"{table['address']!r} is not an IP address"
            )
            return None
        return str(table["address"])

    def labels(self, table: Mapping[str, Any], path: str) -> None:
        if not self.typed(table, "labels", path, dict, "a table of strings"):
            return
        for key, value in table["labels"].items():
            if not isinstance(value, str):
                self.add("wrong-type", _join(path, "labels", key), "label values must be strings")
                continue
            err = node_label_error(key, value)
            if err:
                self.add("bad-label", _join(path, "labels", key), err)

    def taints(self, table: Mapping[str, Any], path: str) -> None:
        seen: dict[tuple[str, str], int] = {}
        for i, spec in self.indexed_strings(table, "taints", path):
            try:
                key, _value, effect = parse_taint(spec)
            except ValueError as exc:
                self.add("bad-taint", _join(path, "taints", str(i)), str(exc))
                continue
            # the API server refuses a node with two taints of the same key and effect
            if (key, effect) in seen:
                self.add(
                    "bad-taint",
                    _join(path, "taints", str(i)),
                    f"taint {spec!r} repeats key {key!r} with effect {effect} (taints.{seen[key, effect]})",
                )
            else:
                seen[key, effect] = i


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def validate(data: Any) -> list[Issue]:
    """Every problem of a parsed inventory, in a stable order."""
    c = _Checker()
    top = c.table(data, "", TOP_KEYS, TOP_REQUIRED)
    if top is None:
        return c.issues
    cluster = c.table(top.get("cluster", {}), "cluster", CLUSTER_KEYS, CLUSTER_REQUIRED)
    if cluster is not None:
        if c.typed(cluster, "name", "cluster", str, "a string") and not is_dns1123_label(
            cluster["name"]
        ):
            c.add("bad-name", "cluster.name", f"{cluster['name']!r} is not a DNS-1123 label")
        if c.typed(cluster, "api_endpoint", "cluster", str, "a URL string") and not re.fullmatch(
            r"^https://[^/\s]+:\d+$", cluster["api_endpoint"]
        ):
            c.add("bad-value", "cluster.api_endpoint", "must look like https://ADDRESS:6443")
        for key in ("cluster_cidr", "service_cidr"):
            if c.typed(cluster, key, "cluster", str, "a CIDR string"):
                try:
                    ipaddress.ip_network(cluster[key])
                except ValueError:
                    c.add("bad-value", _join("cluster", key), f"{cluster[key]!r} is not a CIDR")
        if (
            c.typed(cluster, "flannel_backend", "cluster", str, "a string")
            and cluster["flannel_backend"] not in FLANNEL_BACKENDS
        ):
            c.add(
                "bad-value",
                "cluster.flannel_backend",
                f"must be one of {', '.join(FLANNEL_BACKENDS)}",
            )
        for i, item in c.indexed_strings(cluster, "disable", "cluster"):
            if item not in DISABLEABLE:
                c.add(
                    "bad-value",
                    f"cluster.disable.{i}",
                    f"{item!r} is not a k3s component that can be disabled ({', '.join(DISABLEABLE)})",
                )
        c.typed(cluster, "etcd_snapshot_schedule", "cluster", str, "a cron string")
        if (
            c.typed(cluster, "etcd_snapshot_retention", "cluster", int, "an integer")
            and cluster["etcd_snapshot_retention"] < 1
        ):
            c.add("bad-value", "cluster.etcd_snapshot_retention", "must be at least 1")
        if c.typed(cluster, "admin_user", "cluster", str, "a string") and not re.fullmatch(
            r"^[a-z_][a-z0-9_-]*$", cluster["admin_user"]
        ):
            c.add("bad-value", "cluster.admin_user", "is not a valid user name")
        c.string_list(cluster, "admin_keys", "cluster")

    if "ssh" in top:
        _check_ssh(c, top["ssh"], "ssh")

    storage_exports: dict[str, set[str]] = {}
    # (value, path) claims; a value claimed twice is reported at every claimant, so the
    # verdict does not depend on table order (the Nix side sees tables sorted by name).
    name_claims: list[tuple[str, str]] = []
    address_claims: list[tuple[str, str]] = []

    def claim_name(name: str, path: str) -> None:
        name_claims.append((name, path))

    def claim_address(addr: str | None, path: str) -> None:
        if addr is not None:
            address_claims.append((addr, path))

    storage = top.get("storage", {})
    if not isinstance(storage, dict):
        c.add("wrong-type", "storage", "must be a table")
        storage = {}
    for sname, sdata in storage.items():
        spath = f"storage.{sname}"
        s = c.table(sdata, spath, STORAGE_KEYS, STORAGE_REQUIRED)
        if s is None:
            continue
        if not is_dns1123_label(sname):
            c.add("bad-name", spath, f"{sname!r} is not a DNS-1123 label")
        claim_name(sname, spath)
        claim_address(c.address(s, spath), _join(spath, "address"))
        storage_exports[sname] = set(c.string_list(s, "exports", spath))

    hosts = top.get("hosts", {})
    if not isinstance(hosts, dict):
        c.add("wrong-type", "hosts", "must be a table")
        _duplicates(c, "duplicate-name", "name", name_claims)
        _duplicates(c, "duplicate-address", "address", address_claims)
        return c.issues
    if not hosts and "hosts" in top:
        c.add("no-hosts", "hosts", "the inventory declares no hosts")
    cluster_inits: list[str] = []
    roles: dict[str, str] = {}
    for hname, hdata in hosts.items():
        hpath = f"hosts.{hname}"
        h = c.table(hdata, hpath, HOST_KEYS, HOST_REQUIRED)
        if h is None:
            continue
        if not is_dns1123_label(hname):
            c.add(
                "bad-name",
                hpath,
                f"host name {hname!r} is not a DNS-1123 label (it becomes the node name)",
            )
        claim_name(hname, hpath)
        claim_address(c.address(h, hpath), _join(hpath, "address"))
        if c.typed(h, "role", hpath, str, "a string"):
            if h["role"] in ROLES:
                roles[hname] = h["role"]
            else:
                c.add(
                    "bad-value", _join(hpath, "role"), f"role {h['role']!r} must be server or agent"
                )
        if c.typed(h, "cluster_init", hpath, bool, "true or false") and h["cluster_init"]:
            cluster_inits.append(hname)
            if h.get("role") != "server":
                c.add(
                    "cluster-init-not-server",
                    _join(hpath, "cluster_init"),
                    "only a server can initialise the cluster",
                )
        c.typed(h, "system", hpath, str, "a system string such as x86_64-linux")
        for i, tag in c.indexed_strings(h, "tags", hpath):
            if not TAG_RE.fullmatch(tag):
                c.add(
                    "bad-value",
                    _join(hpath, "tags", str(i)),
                    f"tag {tag!r} must be lowercase letters, digits and dashes",
                )
        c.labels(h, hpath)
        c.taints(h, hpath)
        if c.typed(h, "rocm_gfx_version", hpath, str, "a version string") and not re.fullmatch(
            r"^\d+\.\d+\.\d+$", h["rocm_gfx_version"]
        ):
            c.add(
                "bad-value",
                _join(hpath, "rocm_gfx_version"),
                "must look like 11.0.0 (HSA_OVERRIDE_GFX_VERSION)",
            )
        if "ssh" in h:
            _check_ssh(c, h["ssh"], _join(hpath, "ssh"))
        if c.typed(h, "gpus", hpath, list, "a list of tables"):
            for i, gdata in enumerate(h["gpus"]):
                gpath = _join(hpath, "gpus", str(i))
                g = c.table(gdata, gpath, GPU_KEYS, GPU_REQUIRED)
                if g is None:
                    continue
                if c.typed(g, "vendor", gpath, str, "a string") and g["vendor"] not in GPU_VENDORS:
                    c.add(
                        "bad-value",
                        _join(gpath, "vendor"),
                        f"GPU vendor {g['vendor']!r} must be nvidia or amd",
                    )
                c.typed(g, "model", gpath, str, "a string")
                for key in ("count", "vram_gb"):
                    if c.typed(g, key, gpath, int, "an integer") and g[key] < 1:
                        c.add("bad-value", _join(gpath, key), "must be at least 1")
        if c.typed(h, "nfs", hpath, list, "a list of tables"):
            mountpoints: list[tuple[str, str]] = []
            for i, ndata in enumerate(h["nfs"]):
                npath = _join(hpath, "nfs", str(i))
                n = c.table(ndata, npath, NFS_KEYS, NFS_REQUIRED)
                if n is None:
                    continue
                if isinstance(n.get("mountpoint"), str):
                    mountpoints.append((n["mountpoint"], _join(npath, "mountpoint")))
                c.typed(n, "read_only", npath, bool, "true or false")
                if c.typed(n, "mountpoint", npath, str, "an absolute path") and not n[
                    "mountpoint"
                ].startswith("/"):
                    c.add("bad-value", _join(npath, "mountpoint"), "must be an absolute path")
                server_ok = c.typed(n, "server", npath, str, "a storage name")
                export_ok = c.typed(n, "export", npath, str, "a path")
                if server_ok and export_ok:
                    if n["server"] not in storage_exports:
                        c.add(
                            "unknown-storage",
                            _join(npath, "server"),
                            f"no [storage.{n['server']}] in the inventory",
                        )
                    elif n["export"] not in storage_exports[n["server"]]:
                        c.add(
                            "unknown-export",
                            _join(npath, "export"),
                            f"{n['server']} does not export {n['export']}",
                        )
            _duplicates(c, "duplicate-mountpoint", "mountpoint", mountpoints)
        if c.typed(h, "microvms", hpath, list, "a list of tables"):
            for i, vdata in enumerate(h["microvms"]):
                vpath = _join(hpath, "microvms", str(i))
                v = c.table(vdata, vpath, MICROVM_KEYS, MICROVM_REQUIRED)
                if v is None:
                    continue
                if c.typed(v, "name", vpath, str, "a string"):
                    if not is_dns1123_label(v["name"]):
                        c.add(
                            "bad-name",
                            _join(vpath, "name"),
                            f"{v['name']!r} is not a DNS-1123 label",
                        )
                    claim_name(v["name"], _join(vpath, "name"))
                claim_address(c.address(v, vpath), _join(vpath, "address"))
                for key in ("vcpu", "memory_mb"):
                    if c.typed(v, key, vpath, int, "an integer") and v[key] < 1:
                        c.add("bad-value", _join(vpath, key), "must be at least 1")
                c.labels(v, vpath)
                c.taints(v, vpath)

    if hosts and isinstance(hosts, dict):
        if not cluster_inits:
            c.add(
                "no-cluster-init", "hosts", "no server has cluster_init = true (exactly one must)"
            )
        elif len(cluster_inits) > 1:
            c.add(
                "many-cluster-init",
                "hosts",
                f"{len(cluster_inits)} servers have cluster_init = true ({', '.join(cluster_inits)}); exactly one must",
            )
        if "server" not in roles.values():
            for hname, role in roles.items():
                if role == "agent":
                    c.add(
                        "agent-without-server",
                        f"hosts.{hname}",
                        'agent has no server to join (no host has role = "server")',
                    )
    _duplicates(c, "duplicate-name", "name", name_claims)
    _duplicates(c, "duplicate-address", "address", address_claims)
    return c.issues


def _duplicates(c: _Checker, code: str, what: str, claims: list[tuple[str, str]]) -> None:
    by_value: dict[str, list[str]] = {}
    for value, path in claims:
        by_value.setdefault(value, []).append(path)
    for value, paths in by_value.items():
        if len(paths) > 1:
            for path in paths:
                c.add(
                    code,
                    path,
                    f"{what} {value!r} is used {len(paths)} times ({', '.join(paths)})",
                )


def _check_ssh(c: _Checker, data: Any, path: str) -> None:
    s = c.table(data, path, SSH_KEYS, set())
    if s is None:
        return
    c.typed(s, "user", path, str, "a string")
    if c.typed(s, "port", path, int, "an integer") and not 0 < s["port"] < 65536:
        c.add("bad-value", _join(path, "port"), "must be a TCP port (1-65535)")
    for key in ("key", "jump", "known_hosts", "host_key"):
        c.typed(s, key, path, str, "a string")
    c.typed(s, "sudo", path, bool, "true or false")


# ----------------------------------------------------------------------------- loading


def parse_toml(path: Path) -> Any:
    text = read_user_text(path, "inventory file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None


def load_inventory(path: Path) -> Inventory:
    """Read, validate and type the inventory; any problem is a one-line UserError."""
    data = parse_toml(path)
    issues = validate(data)
    if issues:
        more = (
            f" (and {len(issues) - 1} more: run `hydradeploy inventory check`)"
            if len(issues) > 1
            else ""
        )
        raise UserError(f"{path}: {issues[0]}{more}")
    return build(data, path)


def build(data: Mapping[str, Any], path: Path) -> Inventory:
    base = path.parent
    cl = data["cluster"]
    raw_hosts = data["hosts"]
    init = next(n for n, h in raw_hosts.items() if h.get("cluster_init"))
    cluster = Cluster(
        name=cl["name"],
        api_endpoint=cl.get(
            "api_endpoint", f"https://{_url_host(raw_hosts[init]['address'])}:6443"
        ),
        cluster_cidr=cl.get("cluster_cidr", Cluster.cluster_cidr),
        service_cidr=cl.get("service_cidr", Cluster.service_cidr),
        flannel_backend=cl.get("flannel_backend", Cluster.flannel_backend),
        disable=tuple(cl.get("disable", ())),
        etcd_snapshot_schedule=cl.get("etcd_snapshot_schedule", Cluster.etcd_snapshot_schedule),
        etcd_snapshot_retention=cl.get("etcd_snapshot_retention", Cluster.etcd_snapshot_retention),
        admin_user=cl.get("admin_user", Cluster.admin_user),
        admin_keys=tuple(cl.get("admin_keys", ())),
    )
    ssh_defaults = data.get("ssh", {})
    hosts = {name: _build_host(name, h, ssh_defaults, base) for name, h in raw_hosts.items()}
    storage = {
        name: Storage(name=name, address=s["address"], exports=tuple(s["exports"]))
        for name, s in data.get("storage", {}).items()
    }
    return Inventory(path=path, cluster=cluster, hosts=hosts, storage=storage)


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _resolve(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _build_host(
    name: str, h: Mapping[str, Any], ssh_defaults: Mapping[str, Any], base: Path
) -> Host:
    s = {**ssh_defaults, **h.get("ssh", {})}
    ssh = SSHSettings(
        user=s.get("user", "root"),
        port=s.get("port", 22),
        key=_resolve(base, s.get("key")),
        jump=s.get("jump"),
        sudo=s.get("sudo", False),
        known_hosts=_resolve(base, s.get("known_hosts")),
        host_key=s.get("host_key"),
    )
    return Host(
        name=name,
        address=h["address"],
        role=h["role"],
        cluster_init=h.get("cluster_init", False),
        system=h.get("system", "x86_64-linux"),
        tags=tuple(h.get("tags", ())),
        labels=dict(h.get("labels", {})),
        taints=tuple(h.get("taints", ())),
        gpus=tuple(
            Gpu(vendor=g["vendor"], model=g["model"], count=g["count"], vram_gb=g.get("vram_gb"))
            for g in h.get("gpus", ())
        ),
        ssh=ssh,
        nfs=tuple(
            NfsMount(
                server=n["server"],
                export=n["export"],
                mountpoint=n["mountpoint"],
                read_only=n.get("read_only", False),
            )
            for n in h.get("nfs", ())
        ),
        microvms=tuple(
            MicroVM(
                name=v["name"],
                address=v["address"],
                vcpu=v.get("vcpu", 2),
                memory_mb=v.get("memory_mb", 4096),
                labels=dict(v.get("labels", {})),
                taints=tuple(v.get("taints", ())),
            )
            for v in h.get("microvms", ())
        ),
        rocm_gfx_version=h.get("rocm_gfx_version"),
    )
