"""Port specs: every documented form, and clean errors for the rest (seed mistake 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from convert_helpers import podman, services
from hydradeploy.convert.compose import load_compose
from hydradeploy.convert.emit import Conversion, EmitOptions, convert
from hydradeploy.convert.model import Port
from hydradeploy.convert.ports import PortError, parse_port


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("8080", [Port(8080)]),
        ("80/udp", [Port(80, "UDP")]),
        ("8080:80", [Port(80, "TCP", 8080)]),
        ("127.0.0.1:8080:80", [Port(80, "TCP", 8080, "127.0.0.1")]),
        ("0.0.0.0:53:53/udp", [Port(53, "UDP", 53, "0.0.0.0")]),
        ("127.0.0.1::80", [Port(80, "TCP", None, "127.0.0.1", random_host_port=True)]),
        ("[::1]:8080:80", [Port(80, "TCP", 8080, "::1")]),
        (
            "1234-1236:1234-1236/tcp",
            [Port(1234, "TCP", 1234), Port(1235, "TCP", 1235), Port(1236, "TCP", 1236)],
        ),
        ("9000-9001", [Port(9000), Port(9001)]),
        ("5000/SCTP", [Port(5000, "SCTP")]),
    ],
)
def test_forms(spec: str, expected: list[Port]) -> None:
    ports, note = parse_port(spec)
    assert ports == expected
    assert note is None


def test_host_range_for_one_container_port_takes_the_first_and_says_so() -> None:
    ports, note = parse_port("1234-1236:1234/tcp")
    assert ports == [Port(1234, "TCP", 1234)]
    assert note is not None and "1234-1236" in note


def test_loopback_and_specific_addresses() -> None:
    assert parse_port("127.0.0.1:80:80")[0][0].loopback
    assert parse_port("[::1]:80:80")[0][0].loopback
    assert parse_port("192.0.2.7:80:80")[0][0].specific_ip
    assert not parse_port("0.0.0.0:80:80")[0][0].specific_ip


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "empty"),
        ("http", "not a port number"),
        ("0", "outside 1-65535"),
        ("70000:80", "outside 1-65535"),
        ("80/icmp", "unknown protocol"),
        ("1-3:1-2", "differ in size"),
        ("9000-8000", "runs backwards"),
        ("1-5000", "more than"),
        ("::1:80:80", "too many"),
        ("[::1:80:80", "IPv6"),
    ],
)
def test_errors(spec: str, reason: str) -> None:
    with pytest.raises(PortError, match=reason):
        parse_port(spec)


def _bare_6379_inputs(tmp_path: Path) -> dict[str, Conversion]:
    """`6379` published without a host port, in each way a user can write it."""
    compose_short = tmp_path / "short" / "docker-compose.yml"
    compose_long = tmp_path / "long" / "docker-compose.yml"
    for path, ports in (
        (compose_short, '["6379"]'),
        (compose_long, "[{target: 6379}]"),
    ):
        path.parent.mkdir()
        path.write_text(
            f"services:\n  redis:\n    image: redis:7\n    ports: {ports}\n"
        )
    opts = EmitOptions(namespace="apps", host="hydra-ai")
    return {
        "compose short": convert(
            load_compose([compose_short], environ={}, host="hydra-ai"), opts
        ),
        "compose long": convert(
            load_compose([compose_long], environ={}, host="hydra-ai"), opts
        ),
        "oci ports": podman({"redis": {"image": "redis:7", "ports": ["6379"]}}),
        "podman -p": podman(
            {"redis": {"image": "redis:7", "extraOptions": ["-p", "6379"]}}
        ),
        "podman --publish=": podman(
            {"redis": {"image": "redis:7", "extraOptions": ["--publish=6379"]}}
        ),
    }


def test_bare_published_port_is_a_nodeport_in_every_input_form(tmp_path: Path) -> None:
    """Issue 14 point 4: compose's "6379" and podman's `-p 6379` both publish on a host
    port the engine picks; both become the same NodePort and the same report line."""
    lines = {}
    for form, conv in _bare_6379_inputs(tmp_path).items():
        svc = services(conv, "redis")["redis-nodeport"]
        assert svc["spec"]["type"] == "NodePort", form
        assert svc["spec"]["ports"] == [
            {"name": "tcp-6379", "port": 6379, "targetPort": 6379, "protocol": "TCP"}
        ], form
        (line,) = [n for n in conv.containers[0].notes if "no host port" in n.message]
        lines[form] = (line.kind, line.key, line.message.split(":", 1)[1])
    assert len(set(lines.values())) == 1, lines


def test_exposed_ports_stay_unpublished(tmp_path: Path) -> None:
    """compose `expose` only declares a container port: a ClusterIP port, no NodePort."""
    path = tmp_path / "docker-compose.yml"
    path.write_text("services:\n  db:\n    image: postgres:16\n    expose: ['5432']\n")
    conv = convert(load_compose([path], environ={}), EmitOptions(namespace="apps"))
    assert sorted(services(conv, "db")) == ["db"]
    assert services(conv, "db")["db"]["spec"]["ports"][0]["port"] == 5432
    assert not [n for n in conv.containers[0].notes if "no host port" in n.message]
