"""The connections of one command: one per host, reused, closed together; and the
answer to "which server answers `k3s kubectl`" (the cluster-init server when it can be
reached, else the first server that answers)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from hydradeploy.inventory import Host, Inventory
from hydradeploy.transport.errors import RemoteError
from hydradeploy.transport.ssh import Connection, connect


class Connector(Protocol):
    """How connections are opened: `transport.connect`, or a test's stand-in."""

    def __call__(self, host: Host, *, timeout: float = ...) -> Connection: ...


class Pool:
    def __init__(self, inv: Inventory, connector: Connector = connect) -> None:
        self.inv = inv
        self._connect = connector
        self._conns: dict[str, Connection] = {}
        self._lock = threading.Lock()
        self._kube_lock = threading.Lock()
        self._kube: Connection | None = None

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_all()

    def get(self, host: Host) -> Connection:
        """The host's open connection, opened now when it has none (Unreachable)."""
        with self._lock:
            c = self._conns.get(host.name)
            if c is not None and c.alive:
                return c
        c = self._connect(host)
        with self._lock:
            old = self._conns.get(host.name)
            self._conns[host.name] = c
        if old is not None and old is not c:
            old.close()
        return c

    def fresh(self, host: Host, timeout: float) -> Connection:
        """A NEW connection, not kept in the pool (the deploy's confirm: proof that the
        host still accepts SSH after activation). The caller closes it."""
        return self._connect(host, timeout=timeout)

    def peek(self, host: Host) -> Connection | None:
        """The host's connection when it is open and alive, without connecting."""
        with self._lock:
            c = self._conns.get(host.name)
        return c if c is not None and c.alive else None

    def drop(self, host: Host) -> None:
        with self._lock:
            c = self._conns.pop(host.name, None)
        if c is not None:
            c.close()

    def close_all(self) -> None:
        with self._lock:
            conns = list(self._conns.values())
            self._conns.clear()
        for c in conns:
            c.close()

    def open_many(self, hosts: Iterable[Host], workers: int = 8) -> dict[str, str]:
        """Connect to hosts in parallel; returns host -> error for those that failed."""
        todo = list(hosts)

        def one(h: Host) -> tuple[str, str]:
            try:
                self.get(h)
                return h.name, ""
            except RemoteError as exc:
                return h.name, str(exc)

        if not todo:
            return {}
        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as ex:
            return {n: e for n, e in ex.map(one, todo) if e}

    def kube(self) -> Connection | None:
        """A server to ask k3s about nodes: the cluster-init one first."""
        with self._kube_lock:
            if self._kube is not None and self._kube.alive:
                return self._kube
            for s in sorted(self.inv.servers, key=lambda h: not h.cluster_init):
                try:
                    self._kube = self.get(s)
                    return self._kube
                except RemoteError:
                    continue
            return None

    def kube_if_open(self) -> Connection | None:
        """Like `kube`, among the servers already connected (no new connection)."""
        for s in sorted(self.inv.servers, key=lambda h: not h.cluster_init):
            c = self.peek(s)
            if c is not None:
                return c
        return None
