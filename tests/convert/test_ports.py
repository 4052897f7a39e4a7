"""Port specs: every documented form, and clean errors for the rest (seed mistake 8)."""

from __future__ import annotations

import pytest
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
