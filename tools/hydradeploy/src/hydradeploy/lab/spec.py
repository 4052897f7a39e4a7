"""What the user asks the lab for: hosts with a role and GPUs (HostSpec), from the
command line (HOST:ROLE[:GPUS]) or from an inventory, as a source-inventory table."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydradeploy.errors import UserError
from hydradeploy.kube_names import is_dns1123_label

FAULTS = ("activation", "network", "join", "labels", "gpus", "lease", "sshd", "crash", "unit")
K3S_FAULTS = ("join", "labels", "gpus", "lease", "crash")  # the ones the simulated k3s acts on
GPU_MODELS = {"nvidia": "lab NVIDIA GPU", "amd": "lab AMD GPU"}


@dataclass(frozen=True)
class HostSpec:
    """One lab host. The first server of a lab initialises the cluster."""

    name: str
    role: str
    gpus: Mapping[str, int] = field(default_factory=dict)  # vendor -> count
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> HostSpec:
        """HOST:ROLE[:GPUS], GPUS like nvidia=2 or nvidia=1,amd=1."""
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise UserError(
                f"host spec {text!r}: expected HOST:ROLE[:GPUS], e.g. w1:agent:nvidia=2"
            )
        name, role = parts[0], parts[1]
        gpus: dict[str, int] = {}
        if len(parts) == 3 and parts[2]:
            for item in parts[2].split(","):
                m = re.fullmatch(r"(nvidia|amd)=([1-9][0-9]*)", item)
                if not m:
                    raise UserError(
                        f"host spec {text!r}: GPUs {item!r} must be nvidia=N or amd=N (N >= 1)"
                    )
                gpus[m.group(1)] = gpus.get(m.group(1), 0) + int(m.group(2))
        return cls(name=name, role=role, gpus=gpus)


def source_from_specs(specs: Sequence[HostSpec]) -> dict[str, Any]:
    """An inventory table (the hosts/inventory.toml shape) for the given hosts."""
    if not specs:
        raise UserError("lab up: give at least one host (HOST:ROLE[:GPUS])")
    seen: set[str] = set()
    hosts: dict[str, Any] = {}
    init_done = False
    for spec in specs:
        if not is_dns1123_label(spec.name):
            raise UserError(f"host {spec.name!r}: not a DNS-1123 label (it becomes the node name)")
        if spec.name in seen:
            raise UserError(f"host {spec.name!r}: given twice")
        seen.add(spec.name)
        if spec.role not in ("server", "agent"):
            raise UserError(f"host {spec.name!r}: role {spec.role!r} must be server or agent")
        for vendor in spec.gpus:
            if vendor not in GPU_MODELS:
                raise UserError(f"host {spec.name!r}: GPU vendor {vendor!r} must be nvidia or amd")
        table: dict[str, Any] = {"address": "0.0.0.0", "role": spec.role}
        if spec.role == "server" and not init_done:
            table["cluster_init"] = True
            init_done = True
        if spec.tags:
            table["tags"] = list(spec.tags)
        if spec.labels:
            table["labels"] = dict(spec.labels)
        if spec.taints:
            table["taints"] = list(spec.taints)
        if spec.gpus:
            table["gpus"] = [
                {"vendor": v, "model": GPU_MODELS[v], "count": n}
                for v, n in sorted(spec.gpus.items())
            ]
        hosts[spec.name] = table
    if not init_done:
        raise UserError("lab up: at least one host must be a server (HOST:server)")
    return {"cluster": {"name": "hydra-lab"}, "hosts": hosts}
