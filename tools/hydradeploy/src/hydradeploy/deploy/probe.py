"""Preflight: what a host is running now, in one round trip."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hydradeploy.deploy.models import SYSTEM_PROFILE
from hydradeploy.deploy.remote import Remote, script

# /etc/NIXOS marks a NixOS installation (upstream: nixpkgs pkgs/by-name/sw/
# switch-to-configuration-ng/src/src/main.rs @00401fd7e581, "This is not a NixOS
# installation!" unless /etc/NIXOS is a file or os-release's ID matches). The activation
# script points /run/current-system at the running closure (upstream: nixpkgs
# nixos/modules/system/activation/activation-script.nix, stored copy @04da25cd20da, older
# than the pin: `ln -sfn "$(readlink -f "$systemConfig")" /run/current-system`).
# is-active prints the unit's active state (systemctl(1), systemd 252).
_PROBE = r"""
profile=$1
if [ -e /etc/NIXOS ]; then echo kind=nixos; else echo kind=other; fi
echo "current=$(readlink -f /run/current-system 2>/dev/null)"
echo "current_time=$(stat -c %Y /run/current-system 2>/dev/null)"
echo "profile_link=$(readlink "$profile" 2>/dev/null)"
echo "profile_path=$(readlink -f "$profile" 2>/dev/null)"
echo "store_free_kb=$(df -Pk /nix/store 2>/dev/null | awk 'NR==2 {print $4}')"
echo "k3s=$(systemctl is-active k3s 2>/dev/null)"
echo "now=$(date +%s)"
echo "failed=$(systemctl list-units --failed --plain --no-legend 2>/dev/null | awk '{printf "%s ", $1}')"
"""


@dataclass(frozen=True)
class HostState:
    kind: str  # nixos | other
    current: str  # /run/current-system target
    generation: int | None  # profile generation number
    profile_path: str
    store_free_kb: int | None
    k3s: str
    system: str
    closure_age_s: int | None
    # units failed before the deploy: the system check fails only on units failed since
    failed_units: frozenset[str] = frozenset()

    @property
    def is_nixos_like(self) -> bool:
        return self.kind == "nixos"

    @property
    def consistent(self) -> bool:
        """The running system is the profile's current generation."""
        return bool(self.current) and self.current == self.profile_path


_LINK_RE = re.compile(r"-(\d+)-link$")


def parse(text: str) -> HostState:
    kv: dict[str, str] = {}
    for line in text.splitlines():
        k, _, v = line.partition("=")
        kv[k] = v.strip()
    m = _LINK_RE.search(kv.get("profile_link", ""))

    def num(key: str) -> int | None:
        v = kv.get(key, "")
        return int(v) if v.isdigit() else None

    now, ctime = num("now"), num("current_time")
    return HostState(
        kind=kv.get("kind", "other"),
        current=kv.get("current", ""),
        generation=int(m.group(1)) if m else None,
        profile_path=kv.get("profile_path", ""),
        store_free_kb=num("store_free_kb"),
        k3s=kv.get("k3s", "") or "unknown",
        system=kv.get("system", "") or "not asked",
        closure_age_s=(now - ctime) if now is not None and ctime is not None else None,
        failed_units=frozenset(kv.get("failed", "").split()),
    )


def probe(remote: Remote, profile: str = SYSTEM_PROFILE) -> HostState:
    res = remote.run(script(_PROBE, profile), timeout=20, check=True, what="preflight")
    return parse(res.stdout)


def human_age(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
