"""A recording stand-in for `hydradeploy.transport.Connection`, in the way of
nixos-rebuild-ng's tests (nixpkgs e9a47ce, pkgs/by-name/ni/nixos-rebuild-ng/src/tests/
test_services.py and test_nix.py patch `run_wrapper` and assert the exact calls):
every command a flow runs is recorded as the line that would go over SSH (sudo
included), and answered by the first scripted reply whose pattern it contains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from hydradeploy.inventory import Host
from hydradeploy.transport import Result, Unreachable
from hydradeploy.transport.ssh import command_line


@dataclass
class Reply:
    pattern: str
    result: Result


@dataclass
class FakeNet:
    """The hosts a test pretends to reach; `connect` is a drop-in connector."""

    replies: dict[str, list[Reply]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (host, command line)
    stdin: dict[str, list[bytes]] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)

    def reply(
        self, host: str, pattern: str, stdout: str = "", rc: int = 0, stderr: str = ""
    ) -> None:
        self.replies.setdefault(host, []).append(
            Reply(pattern, Result(rc, stdout, stderr))
        )

    def connect(self, host: Host, **_: Any) -> FakeConnection:
        if host.name in self.down:
            raise Unreachable(f"{host.name}: cannot connect to {host.address}: refused")
        self.opened.append(host.name)
        return FakeConnection(host, self)

    def lines(self, host: str) -> list[str]:
        return [line for h, line in self.calls if h == host]


class FakeConnection:
    def __init__(self, host: Host, net: FakeNet) -> None:
        self.host = host
        self.net = net
        self.alive = True

    @property
    def name(self) -> str:
        return self.host.name

    def close(self) -> None:
        self.alive = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        stdin: Any = None,
        on_line: Callable[[str], None] | None = None,
        check: bool = False,
        what: str | None = None,
    ) -> Result:
        assert timeout > 0, "every remote command has a timeout"
        line = command_line(self.host, argv)
        self.net.calls.append((self.host.name, line))
        if isinstance(stdin, bytes):
            self.net.stdin.setdefault(self.host.name, []).append(stdin)
        for r in self.net.replies.get(self.host.name, []):
            if r.pattern in line:
                return r.result
        return Result(0, "", "")
