"""lab.json: everything a lab created, written before it is created, so `down` can
clean up after a crash. Also the machine-wide allocation of lab subnets."""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

STATE_FILE = "lab.json"
REGISTRY = Path("/run/hydra-lab")  # one file per lab subnet in use: net-<index> -> lab dir
MAX_LABS = 512  # /24s in 198.18.0.0/15


@dataclass
class HostState:
    name: str
    index: int
    role: str
    address: str
    netns: str
    veth: str
    keeper_pid: int | None = None


@dataclass
class LabState:
    dir: str
    index: int
    bridge: str
    gateway: str
    grace_seconds: float
    heartbeat_seconds: float
    store_mb: int = 1024
    status_report_seconds: float = 300.0
    hosts: dict[str, HostState] = field(default_factory=dict)
    builds: int = 0
    created_dir: bool = False
    owner_pid: int | None = None  # set for ephemeral (test) labs, see reap_orphans
    up: bool = False
    cache_pid: int | None = None  # the binary cache's HTTP server (lab/cache.py)
    cache_port: int | None = None

    @property
    def netns_prefix(self) -> str:
        return f"hydralab{self.index}-"

    def save(self) -> None:
        path = Path(self.dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, lab_dir: Path) -> LabState | None:
        try:
            data: dict[str, Any] = json.loads((lab_dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        # Labs made by another version of the tool share this machine's registry (and
        # are found by reap_orphans): fields this version does not know are left out.
        host_fields = {f.name for f in fields(HostState)}
        lab_fields = {f.name for f in fields(cls)} - {"hosts"}
        hosts = {
            n: HostState(**{k: v for k, v in h.items() if k in host_fields})
            for n, h in data.pop("hosts", {}).items()
        }
        return cls(**{k: v for k, v in data.items() if k in lab_fields}, hosts=hosts)


def subnet(index: int) -> tuple[str, str]:
    """(prefix "198.18.N", gateway) of lab number `index`: one /24 of the benchmark range."""
    prefix = f"198.{18 + index // 256}.{index % 256}"
    return prefix, f"{prefix}.1"


def allocate_index(lab_dir: Path) -> int:
    """Claim a free lab number, starting from one derived from the directory."""
    REGISTRY.mkdir(parents=True, exist_ok=True)
    start = zlib.crc32(str(lab_dir).encode()) % MAX_LABS
    for step in range(MAX_LABS):
        index = (start + step) % MAX_LABS
        if Path(f"/sys/class/net/hl{index}br").exists():
            continue
        try:
            fd = os.open(REGISTRY / f"net-{index}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{lab_dir}\n")
        return index
    raise RuntimeError("all 512 lab subnets are in use")


def release_index(index: int, lab_dir: Path) -> None:
    path = REGISTRY / f"net-{index}"
    try:
        if path.read_text().strip() == str(lab_dir):
            path.unlink()
    except FileNotFoundError:
        pass


def indexes_of(lab_dir: Path) -> list[int]:
    """Lab numbers registered to `lab_dir` (finds a crashed lab whose lab.json is gone)."""
    found = []
    if REGISTRY.is_dir():
        for entry in REGISTRY.glob("net-*"):
            try:
                if entry.read_text().strip() == str(lab_dir):
                    found.append(int(entry.name.removeprefix("net-")))
            except (OSError, ValueError):
                continue
    return sorted(found)
