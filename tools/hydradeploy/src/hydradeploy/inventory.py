"""The cluster inventory: hosts/inventory.toml read, validated and typed.

The same file is read by the flake (`builtins.fromTOML`, modules/lib/inventory.nix) and
the same rules are checked there; tests/nix compares both on good and bad inventories.
The vocabulary (keys, enums, reserved labels) is inventory_schema.toml, read by both;
the checks are inventory_checks.py. Each problem is an `Issue(code, path, message)`:
`code` and `path` are what the two implementations must agree on, `message` is for
people, and `line` (inventory_lines.py) says where in the file it is.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hydradeploy.errors import UserError
from hydradeploy.inventory_checks import Issue, validate
from hydradeploy.inventory_lines import key_lines, line_of
from hydradeploy.inventory_schema import (
    DISABLEABLE,
    FLANNEL_BACKENDS,
    GPU_RESOURCE,
    GPU_VENDORS,
    ROLES,
)
from hydradeploy.userfiles import read_user_text

__all__ = [
    "DISABLEABLE",
    "FLANNEL_BACKENDS",
    "GPU_RESOURCE",
    "GPU_VENDORS",
    "ROLES",
    "Cluster",
    "Gpu",
    "Host",
    "Inventory",
    "Issue",
    "MicroVM",
    "NfsMount",
    "SSHSettings",
    "Storage",
    "check_file",
    "load_inventory",
    "node_labels",
    "parse_toml",
    "validate",
    "where",
]


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
    # where SSH connects (a DNS name or IP); `address` stays the node IP k3s uses.
    # None: SSH connects to `address`.
    target_host: str | None = None

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


# ----------------------------------------------------------------------------- loading


def parse_toml(path: Path) -> Any:
    text = read_user_text(path, "inventory file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)"
        raise UserError(f"{path}: not valid TOML: {exc}") from None


def check_file(path: Path) -> tuple[Any, list[Issue]]:
    """The parsed inventory and its issues, each with the line it points at."""
    data = parse_toml(path)
    issues = validate(data)
    if issues:
        where = key_lines(path.read_text(encoding="utf-8"))
        issues = [replace(i, line=line_of(where, i.path)) for i in issues]
    return data, issues


def where(path: Path, issue: Issue) -> str:
    """`FILE:LINE` (or `FILE` when the line is unknown) for messages."""
    return f"{path}:{issue.line}" if issue.line else str(path)


def load_inventory(path: Path) -> Inventory:
    """Read, validate and type the inventory; any problem is a one-line UserError."""
    data, issues = check_file(path)
    if issues:
        more = (
            f" (and {len(issues) - 1} more: run `hydradeploy inventory check`)"
            if len(issues) > 1
            else ""
        )
        raise UserError(f"{where(path, issues[0])}: {issues[0]}{more}")
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
        target_host=h.get("target_host"),
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
