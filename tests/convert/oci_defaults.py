"""The option defaults of nixpkgs' virtualisation.oci-containers module (the declarations
in nixos/modules/virtualisation/oci-containers.nix, newest stored copy, commit 035a24e7),
so tests can expand a hand-written container into what `nix eval --json` prints for it."""

from __future__ import annotations

from typing import Any


def module_defaults(name: str, backend: str = "podman") -> dict[str, Any]:
    return {
        "autoRemoveOnStop": True,
        "autoStart": True,
        "capabilities": {},
        "cmd": [],
        "dependsOn": [],
        "devices": [],
        "entrypoint": None,
        "environment": {},
        "environmentFiles": [],
        "extraOptions": [],
        "hostname": None,
        "imageFile": None,
        "imageStream": None,
        "labels": {},
        "log-driver": "journald",
        "login": {"passwordFile": None, "registry": None, "username": None},
        "networks": [],
        # the module sets `podman = mkIf (backend == "podman") { }`: submodule defaults
        "podman": {"sdnotify": "conmon", "user": "root"}
        if backend == "podman"
        else None,
        "ports": [],
        "preRunExtraOptions": [],
        "privileged": False,
        "pull": "missing",
        "serviceName": f"{backend}-{name}",
        "user": None,
        "volumes": [],
        "workdir": None,
    }


def evaluated(
    containers: dict[str, dict[str, Any]], backend: str = "podman"
) -> dict[str, Any]:
    """What `nix eval --json` prints: every option, attribute names sorted."""
    out: dict[str, Any] = {}
    for name in sorted(containers):
        merged = {**module_defaults(name, backend), **containers[name]}
        out[name] = {k: merged[k] for k in sorted(merged)}
    return out
