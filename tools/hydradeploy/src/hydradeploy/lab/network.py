"""The lab network: a bridge in the runner's namespace, one network namespace per
host joined to it by a veth pair (host side named eth0), and the link faults."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hydradeploy.errors import OperationFailed

PREFIX_LEN = 24


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise OperationFailed(f"lab: ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def create_bridge(bridge: str, gateway: str) -> None:
    ip("link", "add", bridge, "type", "bridge")
    ip("addr", "add", f"{gateway}/{PREFIX_LEN}", "dev", bridge)
    ip("link", "set", bridge, "up")


def delete_bridge(bridge: str) -> None:
    if Path(f"/sys/class/net/{bridge}").exists():
        ip("link", "del", bridge, check=False)


def create_host_link(netns: str, veth: str, bridge: str, address: str) -> None:
    """A namespace with eth0 (ADDRESS/24) whose peer VETH is a port of BRIDGE."""
    ip("netns", "add", netns)
    ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
    ip("link", "set", veth, "master", bridge, "up")
    ip("-n", netns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", "eth0")
    ip("-n", netns, "link", "set", "eth0", "up")
    ip("-n", netns, "link", "set", "lo", "up")


def netns_list() -> list[str]:
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(netns: str) -> list[int]:
    out = ip("netns", "pids", netns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def delete_netns(netns: str) -> None:
    ip("netns", "del", netns, check=False)


def set_link(veth: str, up: bool) -> None:
    """Cut (down) or restore (up) a host's link from the runner's side."""
    ip("link", "set", veth, "up" if up else "down")


def link_is_up(veth: str) -> bool:
    try:
        return Path(f"/sys/class/net/{veth}/operstate").read_text().strip() != "down"
    except OSError:
        return False


def netem_available() -> bool:
    probe = subprocess.run(
        ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    # "Specified qdisc kind is unknown" when the kernel lacks sch_netem; any other answer
    # (lo already has a qdisc, permission…) means netem itself exists.
    if probe.returncode == 0:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True,
                       timeout=10, check=False)  # fmt: skip
        return True
    return "unknown" not in probe.stderr


def slow_qdisc(ms: int, netem: bool) -> list[str]:
    """tc arguments for ~MS ms of added latency on an interface.

    netem adds a real fixed delay. Without sch_netem in the kernel, a token bucket whose
    rate makes one full-size (1500-byte) packet take MS ms stands in: a slow link, whose
    delay grows with the amount of data (documented in docs/lab.md)."""
    if netem:
        return ["netem", "delay", f"{ms}ms"]
    rate_kbit = max(8, 1500 * 8 // max(ms, 1))
    return ["tbf", "rate", f"{rate_kbit}kbit", "burst", "1600", "latency", f"{max(ms, 1) * 50}ms"]


def set_delay(netns: str, veth: str, ms: int) -> None:
    """MS ms of added latency each way on a host's link (0 removes it): a qdisc on the
    runner's end of the veth and one on the host's eth0."""
    netem = netem_available()
    for prefix, dev in ((["tc"], veth), (["ip", "netns", "exec", netns, "tc"], "eth0")):
        subprocess.run([*prefix, "qdisc", "del", "dev", dev, "root"], capture_output=True,
                       timeout=10, check=False)  # fmt: skip
        if ms:
            proc = subprocess.run(
                [*prefix, "qdisc", "add", "dev", dev, "root", *slow_qdisc(ms, netem)],
                capture_output=True, text=True, timeout=10, check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                raise OperationFailed(f"lab: tc on {dev}: {proc.stderr.strip()}")
