"""Docker/podman port specs: `[ip:][host:]container[/proto]`, with ranges and IPv6.

Every form the oci-containers module documents, plus what `docker run -p` accepts:
`8080`, `80/udp`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, `[::1]:8080:80`,
`1234-1236:1234-1236/tcp`, `1234-1236:1234` (host range, engine picks one).
Compose's short syntax is the same grammar: compose-go types/types.go ParsePortConfig
(e70e961) calls docker/go-connections nat.ParsePortSpecs (v0.4.0, its go.mod); its long
syntax defaults `protocol: tcp`, `mode: ingress` (transform/defaults.go portDefaults).
"""

from __future__ import annotations

import re
from dataclasses import replace

from hydradeploy.convert.model import Port, Protocol

MAX_RANGE = 1024  # a larger range is almost certainly a typo, and explodes the manifest
_PROTOCOLS: dict[str, Protocol] = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}
_RANGE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?\Z")


class PortError(ValueError):
    pass


def parse_protocol(text: str) -> Protocol:
    proto = _PROTOCOLS.get(text.strip().lower())
    if proto is None:
        raise PortError(f"unknown protocol {text!r} (tcp, udp or sctp)")
    return proto


def _range(text: str, what: str) -> tuple[int, int]:
    m = _RANGE.match(text)
    if not m:
        raise PortError(f"{what} {text!r} is not a port number or range")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    for p in (lo, hi):
        if not 1 <= p <= 65535:
            raise PortError(f"{what} {p} is outside 1-65535")
    if hi < lo:
        raise PortError(f"{what} range {text!r} runs backwards")
    if hi - lo + 1 > MAX_RANGE:
        raise PortError(f"{what} range {text!r} has more than {MAX_RANGE} ports")
    return lo, hi


def _split_ip(spec: str) -> tuple[str | None, str]:
    """Take a leading IP (v4, or v6 in brackets) off `spec`; return (ip, rest)."""
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0 or spec[end + 1 : end + 2] != ":":
            raise PortError("IPv6 address must be written [addr]:hostPort:containerPort")
        return spec[1:end], spec[end + 2 :]
    parts = spec.split(":")
    if len(parts) == 3:
        return parts[0], f"{parts[1]}:{parts[2]}"
    if len(parts) > 3:
        raise PortError("too many ':' (write IPv6 addresses in brackets)")
    return None, spec


def parse_port(spec: str) -> tuple[list[Port], str | None]:
    """Parse one spec into ports; the second value is a note when something changed."""
    if not isinstance(spec, str) or not spec.strip():
        raise PortError("empty port spec")
    body, slash, proto_text = spec.strip().partition("/")
    protocol = parse_protocol(proto_text) if slash else "TCP"
    ip, rest = _split_ip(body)
    if ip is not None and not ip:
        ip = None
    host_text, colon, container_text = rest.rpartition(":")
    if not colon:
        container_text, host_text = rest, ""
    elif ":" in host_text:
        raise PortError("too many ':'")
    c_lo, c_hi = _range(container_text, "container port")
    if not colon:
        return [Port(p, protocol) for p in range(c_lo, c_hi + 1)], None
    if host_text == "":  # ip::container → the engine picks a free host port
        return [
            Port(p, protocol, None, ip, random_host_port=True) for p in range(c_lo, c_hi + 1)
        ], None
    h_lo, h_hi = _range(host_text, "host port")
    if c_lo == c_hi and h_hi > h_lo:
        return [Port(c_lo, protocol, h_lo, ip)], (
            f"{spec}: host port range {h_lo}-{h_hi} for one container port; published on {h_lo}"
        )
    if h_hi - h_lo != c_hi - c_lo:
        raise PortError(
            f"host range {host_text} and container range {container_text} differ in size"
        )
    return [
        Port(c, protocol, h, ip)
        for c, h in zip(range(c_lo, c_hi + 1), range(h_lo, h_hi + 1), strict=True)
    ], None


def publish(spec: str) -> tuple[list[Port], list[str]]:
    """A *published* port spec (compose `ports:`, podman `-p`/`--publish`, oci-containers
    `ports`, which the NixOS module passes as `-p` — nixpkgs
    nixos/modules/virtualisation/oci-containers.nix `map (p: "-p ${escapeShellArg p}")
    container.ports`): the ports and what changed, one line each.

    A bare container port ("6379", `-p 6379`) is still published, on a host port the
    engine picks: podman "Host port does not have to be specified … If it is not, the
    container port is randomly assigned a port on the host" (containers/podman
    docs/source/markdown/options/publish.md); compose "the container runtime
    automatically allocates any unassigned port of the host" (compose-spec
    05-services.md "ports", 170098ba). Both become a NodePort the cluster picks, with
    the same report line."""
    ports, note = parse_port(spec)
    notes = [note] if note else []
    if any(p.host_port is None and not p.random_host_port for p in ports):
        ports = [
            p
            if p.host_port is not None or p.random_host_port
            else replace(p, random_host_port=True)
            for p in ports
        ]
        notes.append(bare_port_note(spec))
    return ports, notes


def bare_port_note(spec: str) -> str:
    return (
        f"{spec!r} has no host port: the engine published it on one it picked; here a "
        "NodePort the cluster picks (`kubectl get svc` shows it)"
    )
