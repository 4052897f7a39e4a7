"""Lab system closures: real store paths (`nix-store --add` of a directory the lab
writes) laid out like a NixOS toplevel, carrying the simulated parts they run.

    bin/switch-to-configuration   switch | boot | test | dry-activate
    nixos-version
    sw/bin/k3s, sw/bin/kubectl    the simulated k3s client
    sw/bin/nixos-version          prints nixos-version
    etc/hydra-k3s.json            role, server URL, node name, labels, taints, GPUs,
                                  microVM guest nodes, token file, fault
    etc/systemd/system/k3s.service   the unit switch-to-configuration installs
    etc/ssh/sshd_config           installed as /etc/ssh/sshd_config (as NixOS's etc does)
    lib/hydra-lab/                the guest code (hydra_lab_guest) and k3s-sim
    payload/NN                    with --payload-mib: links to the payload paths
                                  (lab/payload.py), which the closure then references
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hydradeploy.errors import UserError
from hydradeploy.inventory import Inventory
from hydradeploy.lab import base, payload, sshd, store
from hydradeploy.lab.spec import FAULTS, K3S_FAULTS
from hydradeploy.versions import KUBERNETES_VERSION

GUEST_SRC = Path(__file__).parent / "guest"
TOKEN_FILE = "/var/lib/hydra-lab/k3s-token"
INTERFACE = "eth0"

# Each entry point finds its closure from its own resolved path, then imports the guest.
ENTRY = """#!{python} -IB
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[{depth}]
sys.path.insert(0, str(root / "lib" / "hydra-lab"))
from hydra_lab_guest import {module}  # noqa: E402

sys.exit({call})
"""
ENTRIES = {
    "bin/switch-to-configuration": (1, "activate", "activate.main(root, sys.argv[1:])"),
    "sw/bin/k3s": (2, "k3s_cli", "k3s_cli.main(root, Path(sys.argv[0]).name, sys.argv[1:])"),
    "lib/hydra-lab/k3s-sim": (2, "k3s_service", "k3s_service.main(root)"),
}


def interpreter() -> str:
    """The Python the closure's scripts run with: the host's own (the base image's)."""
    return base.GUEST_PYTHON


def k3s_settings(
    inv: Inventory, host: str, *, fault: str | None, revision: str,
    grace_seconds: float, heartbeat_seconds: float, status_report_seconds: float = 300.0,
) -> dict[str, Any]:  # fmt: skip
    """What a NixOS closure's k3s unit would carry, derived from the lab inventory."""
    h = inv.host(host)
    nodes = inv.expected_nodes()
    init = inv.cluster_init
    return {
        "node_name": h.name,
        "role": h.role,
        "cluster_init": h.cluster_init,
        "embedded_etcd": inv.embedded_etcd,
        "address": h.address,
        "server_url": f"http://{init.address}:6443",
        "api_endpoint": inv.cluster.api_endpoint,
        "token_file": TOKEN_FILE,
        "labels": nodes[h.name]["labels"],
        "taints": list(h.taints),
        "gpus": h.gpu_resources(),
        "microvms": [
            {
                "name": vm.name,
                "address": vm.address,
                "vcpu": vm.vcpu,
                "memory_mb": vm.memory_mb,
                "labels": nodes[vm.name]["labels"],
                "taints": list(vm.taints),
            }
            for vm in h.microvms
        ],
        "disable": list(inv.cluster.disable),
        "kubelet_version": f"v{KUBERNETES_VERSION}+k3s1",
        "interface": INTERFACE,
        "heartbeat_seconds": heartbeat_seconds,
        "grace_seconds": grace_seconds,
        "status_report_seconds": status_report_seconds,
        "fault": fault,
        "revision": revision,
    }


BROKEN_UNIT = "hydra-lab-broken.service"


def k3s_unit(settings: dict[str, Any], digest: str) -> str:
    """The closure's k3s.service. Service settings follow nixpkgs
    nixos/modules/services/cluster/rancher/default.nix (commit 011c1bdb102b): Type exec
    for agents, notify for servers; KillMode=process; Restart=always; RestartSec=5s;
    TimeoutStartSec=0; after/wants network-online.target; wanted by multi-user.target.

    NixOS puts the k3s package and every flag into ExecStart, so the unit file changes
    exactly when k3s or its settings change. A lab closure cannot reference a separate
    k3s store path (`nix-store --add` records no references), so ExecStart runs the
    current system's copy and the settings and code enter the unit as
    X-Restart-Triggers — the key nixpkgs' `restartTriggers` writes for the same purpose."""
    kind = "notify" if settings["role"] == "server" else "exec"
    return (
        "[Unit]\nDescription=k3s service (hydra lab simulation)\n"
        "After=network-online.target\nWants=network-online.target\n"
        f"X-Restart-Triggers={digest}\n\n"
        f"[Service]\nType={kind}\nKillMode=process\nDelegate=yes\nRestart=always\n"
        "RestartSec=5s\nTimeoutStartSec=0\n"
        "ExecStart=/run/current-system/lib/hydra-lab/k3s-sim\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def k3s_digest(settings: dict[str, Any]) -> str:
    """What k3s.service runs, in one hash: its settings (less the build number, which
    every closure has its own) and the guest code."""
    k3s = {k: v for k, v in settings.items() if k not in ("revision", "sshd_revision")}
    if k3s.get("fault") not in K3S_FAULTS:
        k3s["fault"] = None  # faults of the activation or of sshd leave k3s alone
    h = hashlib.sha256()
    h.update(json.dumps(k3s, sort_keys=True).encode())
    for src in sorted(GUEST_SRC.glob("*.py")):
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    return h.hexdigest()


def sshd_config_text(settings: dict[str, Any]) -> str:
    text = sshd.sshd_config()
    if settings.get("fault") == "sshd":
        # An option sshd does not know: `sshd -t` (Debian's ssh.service ExecStartPre)
        # fails with "Bad configuration option", so ssh.service fails to start.
        text += "HydraLabBrokenOption yes\n"
    if settings.get("sshd_revision"):
        text += f"# configuration revision {settings['sshd_revision']}\n"
    return text


def write_tree(root: Path, settings: dict[str, Any]) -> None:
    python = interpreter()
    for rel, (depth, module, call) in ENTRIES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ENTRY.format(python=python, depth=depth, module=module, call=call))
        path.chmod(0o555)
    (root / "sw" / "bin" / "kubectl").symlink_to("k3s")
    version = root / "sw" / "bin" / "nixos-version"
    version.write_text(  # the label and a newline (the file itself has none)
        '#!/bin/sh\ncat "$(dirname "$(readlink -f "$0")")/../../nixos-version" && echo\n'
    )
    version.chmod(0o555)
    guest = root / "lib" / "hydra-lab" / "hydra_lab_guest"
    guest.mkdir(parents=True)
    for src in sorted(GUEST_SRC.glob("*.py")):
        shutil.copyfile(src, guest / src.name)
    (root / "etc").mkdir()
    (root / "etc" / "hydra-k3s.json").write_text(json.dumps(settings, indent=2, sort_keys=True))
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    (units / "k3s.service").write_text(k3s_unit(settings, k3s_digest(settings)))
    if settings.get("fault") == "unit":
        # A service of the new generation that fails to start (ssh and k3s unaffected):
        # switch-to-configuration starts it and reports it failed; the system turns
        # `degraded` (systemd's is-system-running: "one or more units failed").
        (units / BROKEN_UNIT).write_text(
            "[Unit]\nDescription=a service this closure breaks (hydra lab fault 'unit')\n\n"
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/false\n\n"
            "[Install]\nWantedBy=multi-user.target\n"
        )
    (root / "etc" / "ssh").mkdir()
    (root / "etc" / "ssh" / "sshd_config").write_text(sshd_config_text(settings))
    # top-level.nix's systemBuilder: `echo -n "$nixosLabel" > $out/nixos-version`
    (root / "nixos-version").write_text(nixos_label(settings))


# The release of the pinned nixpkgs (flake.nix: github:NixOS/nixpkgs/nixos-26.05).
LAB_NIXOS_RELEASE = "26.05"


def nixos_label(settings: dict[str, Any]) -> str:
    """The closure's `system.nixos.label` as NixOS forms it: the sorted
    `system.nixos.tags`, then the version, joined by "-" (nixpkgs nixos/modules/misc/
    label.nix, nixos-26.05). The lab's version is the release and the lab revision, its
    one tag the fault: "26.05.lab3", "join-fault-26.05.lab5". The version starting with
    a digit is what lets `nix store diff-closures` split name and version (Nix 2.8.0
    src/libstore/names.cc DrvName)."""
    version = f"{LAB_NIXOS_RELEASE}.lab{settings['revision']}"
    tags = sorted([f"{settings['fault']}-fault"] if settings["fault"] else [])
    return "-".join([*tags, version])


def build(
    settings: dict[str, Any], manifests: Path | None = None, *,
    payload_mib: int = 0, payload_seed: str | None = None,
) -> str:  # fmt: skip
    """Write the closure tree and add it to the runner's store; returns the store path.
    MANIFESTS: a k8s/ directory whose YAML the closure deploys (see add_manifests).
    PAYLOAD_MIB: that much incompressible data in store paths the closure references
    (lab/payload.py; the seed defaults to the host name)."""
    fault = settings["fault"]
    if fault is not None and fault not in FAULTS:
        raise ValueError(fault)
    # nixpkgs nixos/modules/system/activation/top-level.nix (nixos-26.05):
    # name = "nixos-system-${config.system.name}-${config.system.nixos.label}"
    name = f"nixos-system-{settings['node_name']}-{nixos_label(settings)}"
    with tempfile.TemporaryDirectory(prefix="hydra-lab-closure-") as tmp:
        root = Path(tmp) / name
        write_tree(root, settings)
        if manifests is not None:
            add_manifests(root, manifests)
        tree = store.add(root)
    if not payload_mib:
        return tree
    seed = payload_seed if payload_seed is not None else settings["node_name"]
    return payload.build(tree, name, payload_mib, seed)


# upstream: nixpkgs nixos/modules/services/cluster/rancher/default.nix @011c1bdb102b
# (`manifestDir = "/var/lib/rancher/${name}/server/manifests"`, name = "k3s")
MANIFEST_DIR = "/var/lib/rancher/k3s/server/manifests"


def manifest_targets(k8s: Path) -> dict[str, Path]:
    """target name -> file, as modules/lib/manifests.nix maps k8s/: every *.yaml/*.yml
    below it except kustomization.yaml and dotfiles; k8s/apps/x.yaml -> hydra-apps-x.yaml."""
    out: dict[str, Path] = {}
    for path in sorted(k8s.rglob("*")):
        rel = path.relative_to(k8s).as_posix()
        if not path.is_file() or not rel.endswith((".yaml", ".yml")):
            continue
        if path.name.startswith(".") or path.name in ("kustomization.yaml", "kustomization.yml"):
            continue
        out["hydra-" + rel.replace("/", "-")] = path
    return out


def add_manifests(root: Path, k8s: Path) -> None:
    """The closure's k8s/ files plus etc/tmpfiles.d/10-k3s.conf with one `L+` rule per
    manifest, in the line format of nixpkgs' tmpfiles module (settingsEntryToRule), as
    services.k3s.manifests produces (rancher/default.nix: systemd.tmpfiles.settings."10-k3s")."""
    if not k8s.is_dir():
        raise UserError(f"lab closure: --manifests {k8s}: not a directory")
    targets = manifest_targets(k8s)
    (root / "k8s").mkdir()
    rules = []
    for target, src in targets.items():
        shutil.copyfile(src, root / "k8s" / target)
        rules.append(f"'L+' '{MANIFEST_DIR}/{target}' '-' '-' '-' '-' @OUT@/k8s/{target}\n")
    (root / "etc" / "tmpfiles.d").mkdir(parents=True)
    (root / "etc" / "tmpfiles.d" / "10-k3s.conf").write_text("".join(rules))
