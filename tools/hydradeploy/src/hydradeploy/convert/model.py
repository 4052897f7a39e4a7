"""The neutral container model both front ends produce and the emitter consumes.

Front ends (oci_containers.py, compose.py) only translate syntax into these types; every
Kubernetes decision is made in emit.py. Each container also carries a list of Notes:
what was changed or lost on the way, which the report shows and docs/converter.md
explains rule by rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Protocol = Literal["TCP", "UDP", "SCTP"]
NoteKind = Literal["converted", "changed", "lost", "warning", "action"]


@dataclass(frozen=True, slots=True)
class Note:
    kind: NoteKind
    key: str  # the source option the note is about (`ports`, `extraOptions --ulimit`, …)
    message: str


@dataclass(frozen=True, slots=True)
class Port:
    container_port: int
    protocol: Protocol = "TCP"
    host_port: int | None = None  # None: not published on the host
    host_ip: str | None = None  # None/""/0.0.0.0/:: all addresses
    random_host_port: bool = False  # `ip::container`: the engine picked a host port

    @property
    def loopback(self) -> bool:
        return self.host_ip is not None and (
            self.host_ip.startswith("127.") or self.host_ip in ("::1", "localhost")
        )

    @property
    def specific_ip(self) -> bool:
        return bool(self.host_ip) and not self.loopback and self.host_ip not in ("0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class Mount:
    kind: Literal["bind", "volume", "tmpfs", "anonymous"]
    target: str
    source: str = ""  # host path (bind) or volume name (volume)
    read_only: bool = False
    size: str | None = None  # tmpfs size, Kubernetes quantity
    host_type: str | None = None  # hostPath type when the source is known (a "File")


@dataclass(frozen=True, slots=True)
class Device:
    host_path: str
    container_path: str


@dataclass(frozen=True, slots=True)
class GpuRequest:
    vendor: Literal["nvidia", "amd"]
    count: int | None  # None: "all" GPUs of the host
    origin: str  # the option it came from, for the report


@dataclass(frozen=True, slots=True)
class Healthcheck:
    command: tuple[str, ...]  # exec form; shell forms are wrapped in /bin/sh -c
    interval_s: int | None = None
    timeout_s: int | None = None
    retries: int | None = None
    start_period_s: int | None = None
    start_interval_s: int | None = None


@dataclass(slots=True)
class Resources:
    cpu_limit: str | None = None
    memory_limit: str | None = None
    cpu_request: str | None = None
    memory_request: str | None = None
    shm_size: str | None = None


@dataclass(slots=True)
class Container:
    """One container of the source, in source terms (nothing Kubernetes-specific)."""

    source_name: str  # the attribute / service name as written
    source_file: str  # where it came from, for error messages and annotations
    image: str = ""
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    environment_files: list[str] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)
    expose: list[Port] = field(default_factory=list)  # container ports, not published
    mounts: list[Mount] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    gpus: list[GpuRequest] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    # other names the container answered to on its network (name, where it came from):
    # compose container_name / network aliases / hostname / links, podman --network-alias
    aliases: list[tuple[str, str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    pull: str | None = None  # always / missing / never / newer (oci-containers terms)
    image_preloaded: bool = False  # imageFile / imageStream: never pulled
    registry_login: str | None = None  # registry needing credentials
    host_network: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    read_only_root: bool = False
    group_add: list[str] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    healthcheck: Healthcheck | None = None
    add_hosts: list[tuple[str, str]] = field(default_factory=list)  # (hostname, ip)
    dns: list[str] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    restart: str | None = None
    depends_on: list[str] = field(default_factory=list)
    # compose depends_on condition service_completed_successfully: these run to completion
    awaits_completion: list[str] = field(default_factory=list)
    # network_mode service:X / --network=container:X: shares X's network namespace
    network_peer: str | None = None
    replicas: int = 1
    stop_grace_s: int | None = None
    secret_files: list[tuple[str, str]] = field(default_factory=list)  # (secret, mount path)
    config_files: list[tuple[str, str]] = field(default_factory=list)  # (config, mount path)
    notes: list[Note] = field(default_factory=list)

    def note(self, kind: NoteKind, key: str, message: str) -> None:
        self.notes.append(Note(kind, key, message))


@dataclass(slots=True)
class Source:
    """Everything one conversion reads: the containers and where they ran."""

    kind: Literal["podman", "compose"]
    files: list[str]
    containers: list[Container]
    host: str | None = None  # the machine holding bind-mounted data
    project: str | None = None  # compose project name
    shared_volumes: dict[str, str] = field(default_factory=dict)  # volume -> external name
    # compose configs whose content the converter read (file beside the compose file, or
    # inline `content`): config name -> text; they become ConfigMaps (configs hold no
    # secrets; compose `secrets` are never read)
    config_data: dict[str, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)  # about the source as a whole
