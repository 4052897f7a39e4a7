"""The Lab: brings a set of test hosts up, builds closures for them, injects faults,
and tears everything down again (also after a crash), driven by lab.json."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydradeploy.errors import OperationFailed, UserError
from hydradeploy.lab import closure as closures
from hydradeploy.lab import inventory_out, network, processes, requirements, sshd, store, teardown
from hydradeploy.lab.spec import FAULTS, HostSpec, source_from_specs
from hydradeploy.lab.state import (
    STATE_FILE,
    HostState,
    LabState,
    allocate_index,
    indexes_of,
    subnet,
)

HOST_ENV = {"PATH": sshd.SESSION_PATH, "HOME": "/root", "LANG": "C.UTF-8", "USER": "root"}
MAX_HOSTS = 80  # addresses .10–.89 of the lab's /24; microVMs from .100, storage from .250
FILLER = "/nix/.hydra-lab-disk-full"  # what fill_disk writes
HIDDEN_BINARIES = ("systemd-run",)  # no systemd in a lab host (see keeper.py)


@dataclass(frozen=True)
class LabHost:
    name: str
    role: str
    address: str
    netns: str


class Lab:
    """A lab whose state lives in DIR. Several labs (different DIRs) can run at once."""

    def __init__(
        self,
        directory: Path,
        *,
        grace_seconds: float = 4.0,
        heartbeat_seconds: float = 1.0,
        status_report_seconds: float = 300.0,
        store_mb: int = 1024,
        ephemeral: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """ephemeral: the lab belongs to this process (a test run) and may be reaped by
        `reap_orphans` once the process is gone. grace_seconds: how long a node may miss
        heartbeats before it turns NotReady (Ready=Unknown). store_mb: size of each
        host's /nix (a tmpfs)."""
        self.store_mb = store_mb
        self._progress = progress
        self.dir = Path(directory).absolute()
        self.ephemeral = ephemeral
        self.grace_seconds = grace_seconds
        self.heartbeat_seconds = heartbeat_seconds
        # the kubelet's nodeStatusReportFrequency (upstream default 5 min): node status is
        # re-posted unchanged this often (guest/k3s_sim.py)
        self.status_report_seconds = status_report_seconds
        self._lock = threading.Lock()
        self._state = LabState.load(self.dir) if (self.dir / STATE_FILE).exists() else None

    # ------------------------------------------------------------------ what there is

    @property
    def inventory_path(self) -> Path:
        return self.dir / "inventory.toml"

    @property
    def key_path(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def hosts(self) -> dict[str, LabHost]:
        state = self._require()
        return {
            n: LabHost(n, h.role, h.address, h.netns)
            for n, h in sorted(state.hosts.items(), key=lambda kv: kv[1].index)
        }

    def address(self, name: str) -> str:
        return self._host(name).address

    def _require(self) -> LabState:
        if self._state is None:
            self._state = LabState.load(self.dir)
        if self._state is None:
            raise UserError(f"{self.dir}: no lab here (run `hydradeploy lab up --dir {self.dir}`)")
        return self._state

    def _host(self, name: str) -> HostState:
        state = self._require()
        try:
            return state.hosts[name]
        except KeyError:
            known = ", ".join(sorted(state.hosts))
            raise UserError(f"{self.dir}: no lab host {name!r} (hosts: {known})") from None

    def _host_dir(self, name: str) -> Path:
        return self.dir / "hosts" / name

    def _save(self) -> None:
        with self._lock:
            self._require().save()

    # ------------------------------------------------------------------ up

    def up(self, specs: Sequence[HostSpec]) -> Path:
        """Start the hosts; returns the lab inventory. The first server is cluster-init."""
        return self._up(source_from_specs(specs))

    def up_from_inventory(self, path: Path) -> Path:
        """Start a lab with the hosts, roles, labels, taints, GPUs and microVMs of an
        inventory (its addresses replaced by lab addresses)."""
        from hydradeploy.inventory import load_inventory, parse_toml

        load_inventory(path)  # the same validation a deploy would do
        return self._up(parse_toml(path))

    def _up(self, source: dict[str, Any]) -> Path:
        reason = requirements.missing()
        if reason:
            raise UserError(f"lab: {reason}")
        existing = LabState.load(self.dir)
        running = existing is not None and any(
            h.keeper_pid and processes.is_keeper(h.keeper_pid) for h in existing.hosts.values()
        )
        if running:
            raise UserError(
                f"{self.dir}: a lab is already up here; run `hydradeploy lab down --dir {self.dir}` first"
            )
        if existing is not None or indexes_of(self.dir):
            self.down()  # leftovers of a crashed `up`, or of a lab whose hosts died
        if len(source["hosts"]) > MAX_HOSTS:
            raise UserError(f"lab: at most {MAX_HOSTS} hosts per lab")
        created = not self.dir.exists()
        self.dir.mkdir(parents=True, exist_ok=True)
        index = allocate_index(self.dir)
        prefix, gateway = subnet(index)
        state = LabState(
            dir=str(self.dir), index=index, bridge=f"hl{index}br", gateway=gateway,
            grace_seconds=self.grace_seconds, heartbeat_seconds=self.heartbeat_seconds,
            status_report_seconds=self.status_report_seconds, store_mb=self.store_mb, created_dir=created, owner_pid=os.getpid() if self.ephemeral else None,
        )  # fmt: skip
        for i, name in enumerate(source["hosts"]):
            state.hosts[name] = HostState(
                name=name, index=i, role=source["hosts"][name]["role"],
                address=f"{prefix}.{10 + i}", netns=f"{state.netns_prefix}{name}",
                veth=f"hl{index}h{i}",
            )  # fmt: skip
        self._state = state
        state.save()
        try:
            self._bring_up(source, prefix)
        except BaseException:
            self.down()
            raise
        state.up = True
        self._save()
        return self.inventory_path

    def _say(self, message: str) -> None:
        if self._progress is not None:
            self._progress(message)

    def _bring_up(self, source: dict[str, Any], prefix: str) -> None:
        import secrets
        from concurrent.futures import ThreadPoolExecutor

        state = self._require()
        self._say("keys and lab inventory")
        client_pub = sshd.keygen(self.key_path, "hydra-lab-runner")
        with ThreadPoolExecutor(max_workers=min(8, len(state.hosts))) as pool:
            host_keys = dict(
                zip(
                    state.hosts,
                    pool.map(
                        lambda n: sshd.write_host_ssh(self._host_dir(n) / "ssh", n, client_pub),
                        state.hosts,
                    ),
                    strict=True,
                )
            )
        self.known_hosts_path.write_text(
            sshd.known_hosts_lines({n: (h.address, host_keys[n]) for n, h in state.hosts.items()})
        )
        inventory_out.write(self.inventory_path, self._lab_inventory(source, prefix, host_keys))
        from hydradeploy.inventory import load_inventory

        load_inventory(self.inventory_path)
        token = secrets.token_hex(32)
        self._say("generation-1 closures")
        gen1 = {name: self.closure(name, revision="1") for name in state.hosts}
        network.create_bridge(state.bridge, state.gateway)
        self._say(f"starting {len(state.hosts)} hosts")
        with ThreadPoolExecutor(max_workers=len(state.hosts)) as pool:
            for _ in pool.map(lambda n: self._start_host(n, token, gen1[n]), state.hosts):
                pass
        self._say("waiting for every node to be Ready")
        self.wait_ready(timeout=60)

    def _lab_inventory(
        self, source: dict[str, Any], prefix: str, host_keys: dict[str, str]
    ) -> dict[str, Any]:
        state = self._require()
        hosts: dict[str, Any] = {}
        vm_index = 100
        for name, table in source["hosts"].items():
            out = {k: v for k, v in table.items() if k != "ssh"}
            out["address"] = state.hosts[name].address
            if table.get("microvms"):
                vms = []
                for vm in table["microvms"]:
                    vms.append({**vm, "address": f"{prefix}.{vm_index}"})
                    vm_index += 1
                out["microvms"] = vms
            out["ssh"] = {"host_key": host_keys[name]}
            hosts[name] = out
        storage = {
            name: {**s, "address": f"{prefix}.{250 + i}"}
            for i, (name, s) in enumerate(source.get("storage", {}).items())
        }
        init = next(n for n, h in source["hosts"].items() if h.get("cluster_init"))
        cluster = {
            **source["cluster"],
            "api_endpoint": f"https://{state.hosts[init].address}:6443",
        }
        data: dict[str, Any] = {
            "cluster": cluster,
            "ssh": {
                "user": "root",
                "port": 22,
                "key": str(self.key_path),
                "known_hosts": str(self.known_hosts_path),
            },
        }
        if storage:
            data["storage"] = storage
        data["hosts"] = hosts
        return data

    def _prepare_host_dir(self, name: str, token: str) -> Path:
        hdir = self._host_dir(name)
        for sub in ("run/sshd", "root", "tmp", "etc/profile.d", "var/lib/hydra-lab",
                    "usr-bin", ".work/etc", ".work/var", ".work/usr-bin"):  # fmt: skip
            (hdir / sub).mkdir(parents=True, exist_ok=True)
        (hdir / "tmp").chmod(0o1777)
        (hdir / "run" / "sshd").chmod(0o755)
        for hidden in HIDDEN_BINARIES:
            whiteout = hdir / "usr-bin" / hidden
            if not whiteout.exists():
                os.mknod(whiteout, stat.S_IFCHR, os.makedev(0, 0))  # overlayfs whiteout
        (hdir / "etc" / "hydra-lab").write_text(f"{name}\n")
        (hdir / "etc" / "hostname").write_text(f"{name}\n")
        (hdir / "etc" / "profile.d" / "hydra-lab.sh").write_text(
            f'PATH="{sshd.SESSION_PATH}"\nexport PATH\n'
        )
        tok = hdir / "var" / "lib" / "hydra-lab" / "k3s-token"
        tok.write_text(token + "\n")
        tok.chmod(0o600)
        return hdir

    def _start_host(self, name: str, token: str, gen1: str) -> None:
        state = self._require()
        host = state.hosts[name]
        hdir = self._prepare_host_dir(name, token)
        network.create_host_link(host.netns, host.veth, state.bridge, host.address)
        log = open(hdir / "keeper.log", "wb")  # noqa: SIM115 - handed to the child
        with log:
            proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{host.netns}", "--",
                 "unshare", "--mount", "--uts", "--propagation", "private", "--",
                 closures.interpreter(), "-I", str(processes.KEEPER), str(hdir), name, str(state.store_mb)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True, cwd="/",
            )  # fmt: skip
        host.keeper_pid = proc.pid
        self._save()
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        proc.stdout.close()
        if line != "ready":
            raise OperationFailed(f"lab: host {name}: namespaces not set up: {line or 'no answer'}")
        self._install_system(name, gen1)
        self.start_sshd(name)
        self._say(f"{name}: generation 1 active, sshd up")

    def copy_closure(self, name: str, path: str) -> None:
        """Put a store path (and its references) into host NAME's store without SSH
        (`nix-store --export | --import`); a deploy uses `nix copy` over SSH instead."""
        archive = store.export(store.requisites(path))
        self._checked(name, ["nix-store", "--import"], input=archive, timeout=120)

    def _install_system(self, name: str, path: str) -> None:
        """Generation 1, as a fresh NixOS install: store, profile, activation."""
        self.copy_closure(name, path)
        self._checked(name, ["nix-env", "-p", store.SYSTEM_PROFILE, "--set", path])
        self._checked(name, [f"{path}/bin/switch-to-configuration", "switch"], timeout=60)
        self._checked(name, ["ln", "-sfn", path, "/run/booted-system"])

    def _checked(
        self, name: str, argv: list[str], input: bytes | None = None, timeout: float = 60
    ) -> bytes:
        proc = self._exec(name, argv, input=input, timeout=timeout)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise OperationFailed(
                f"lab: host {name}: {' '.join(argv)}: {err[-1] if err else f'exit {proc.returncode}'}"
            )
        return proc.stdout

    def wait_ready(self, timeout: float = 30) -> None:
        """Until every host's sshd answers and the server shows every node Ready."""
        from hydradeploy.inventory import load_inventory

        state = self._require()
        expected = set(load_inventory(self.inventory_path).expected_nodes())
        deadline = time.monotonic() + timeout
        pending_ssh = set(state.hosts)
        while True:
            for name in sorted(pending_ssh):
                try:
                    with socket.create_connection((state.hosts[name].address, 22), timeout=1):
                        pending_ssh.discard(name)
                except OSError:
                    pass
            try:
                ready = {
                    n["metadata"]["name"] for n in self.nodes() if _is_ready(n) and _settled(n)
                }
            except OSError:
                ready = set()
            if not pending_ssh and expected <= ready:
                return
            if time.monotonic() > deadline:
                waiting = sorted(pending_ssh) + sorted(f"node {n}" for n in expected - ready)
                raise OperationFailed(f"lab: not ready after {timeout:.0f}s: {', '.join(waiting)}")
            time.sleep(0.1)

    def nodes(self) -> list[dict[str, Any]]:
        """The node objects the cluster-init server holds (read from the runner)."""
        state = self._require()
        import urllib.request

        from hydradeploy.inventory import load_inventory

        init = load_inventory(self.inventory_path).cluster_init.name
        url = f"http://{state.hosts[init].address}:6443/api/v1/nodes"
        with urllib.request.urlopen(url, timeout=3) as resp:
            items: list[dict[str, Any]] = json.loads(resp.read())["items"]
        return items

    def node_ready(self, node: str) -> bool | None:
        """True/False for a registered node's Ready condition, None when not registered."""
        for item in self.nodes():
            if item["metadata"]["name"] == node:
                return _is_ready(item)
        return None

    # ------------------------------------------------------------------ closures

    def closure(
        self, name: str, fault: str | None = None, revision: str | None = None,
        manifests: Path | None = None,
    ) -> str:  # fmt: skip
        """Build a system closure for host NAME in the runner's store (k3s settings from
        the lab inventory; optionally a fault; MANIFESTS: a k8s/ directory it deploys).
        Each call is a new build (revision)."""
        from hydradeploy.inventory import load_inventory

        if fault is not None and fault not in FAULTS:
            raise UserError(f"lab closure: fault {fault!r} must be one of {', '.join(FAULTS)}")
        state = self._require()
        inv = load_inventory(self.inventory_path)
        inv.host(name)
        if revision is None:
            revision = str(self._next_build())
        settings = closures.k3s_settings(
            inv, name, fault=fault, revision=revision,
            grace_seconds=state.grace_seconds, heartbeat_seconds=state.heartbeat_seconds,
            status_report_seconds=state.status_report_seconds,
        )  # fmt: skip
        return closures.build(settings, manifests)

    def _next_build(self) -> int:
        """A build number no other process using this lab has handed out (the CLI and a
        test may build closures for the same lab at once)."""
        state = self._require()
        with self._lock, open(self.dir / "lab.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            on_disk = LabState.load(self.dir)
            state.builds = max(state.builds, on_disk.builds if on_disk else 0) + 1
            state.save()
            return state.builds + 1

    # ------------------------------------------------------------------ inside a host

    def _exec(
        self, name: str, argv: Sequence[str], input: bytes | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[bytes]:
        pid = self._host(name).keeper_pid
        if pid is None or not processes.is_keeper(pid):
            raise OperationFailed(f"lab: host {name} is not running (its keeper process is gone)")
        return subprocess.run(
            ["nsenter", "-t", str(pid), "--net", "--mount", "--uts", "--", *argv],
            input=input, capture_output=True, timeout=timeout, env=HOST_ENV, cwd="/",
            check=False,
        )  # fmt: skip

    def run(
        self, name: str, argv: Sequence[str], timeout: float = 30, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ARGV inside host NAME's namespaces, as root with the SSH session's PATH."""
        proc = self._exec(name, argv, input=input.encode() if input else None, timeout=timeout)
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )  # fmt: skip

    # ------------------------------------------------------------------ faults

    def cut(self, name: str) -> None:
        """Take the host's link down from the outside (as if its cable were pulled)."""
        network.set_link(self._host(name).veth, up=False)

    def restore(self, name: str) -> None:
        """Bring the host's link back (undoes `cut`; not a host that cut itself)."""
        network.set_link(self._host(name).veth, up=True)

    def kill_sshd(self, name: str) -> None:
        pid = processes.read_pid(self._host_dir(name) / "run" / "sshd.pid")
        if pid is not None:
            processes.kill(pid, signal.SIGTERM)
            processes.wait_gone(pid, 5)

    def start_sshd(self, name: str) -> None:
        pid = processes.read_pid(self._host_dir(name) / "run" / "sshd.pid")
        if pid is not None and processes.pid_runs(pid, b"sshd"):
            return
        self._checked(
            name, [requirements.SSHD, "-f", "/etc/ssh/sshd_config", "-E", "/var/log/sshd.log"]
        )
        address = self.address(name)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not network.link_is_up(self._host(name).veth):
                return  # cut: sshd runs, nobody can reach it
            try:
                with socket.create_connection((address, 22), timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        raise OperationFailed(f"lab: host {name}: sshd did not start listening")

    def slow(self, name: str, ms: int) -> None:
        """Add MS ms of latency each way on the host's link (0 removes it)."""
        if ms < 0:
            raise UserError(f"lab slow: {ms} ms must be >= 0")
        host = self._host(name)
        network.set_delay(host.netns, host.veth, ms)

    def status(self) -> list[dict[str, Any]]:
        """Per host: address, link, sshd, k3s unit, node Ready, system generation."""
        try:
            nodes = {n["metadata"]["name"]: _is_ready(n) for n in self.nodes()}
        except OSError:
            nodes = {}
        rows = []
        for name, host in self.hosts.items():
            state = self._host(name)
            sshd_pid = processes.read_pid(self._host_dir(name) / "run" / "sshd.pid")
            if state.keeper_pid and processes.is_keeper(state.keeper_pid):
                k3s = self.run(name, ["systemctl", "is-active", "k3s"], timeout=10).stdout.strip()
                profile = self.run(name, ["readlink", store.SYSTEM_PROFILE], timeout=10).stdout
            else:
                k3s, profile = "host down", ""
            try:
                generation = int(profile.strip().split("-")[1])
            except (OSError, ValueError, IndexError):
                generation = None
            ready = nodes.get(name)
            rows.append({
                "host": name, "role": host.role, "address": host.address,
                "link": "up" if network.link_is_up(state.veth) else "cut",
                "sshd": "running" if sshd_pid and processes.pid_runs(sshd_pid, b"sshd") else "stopped",
                "k3s": k3s or "unknown",
                "node": "Ready" if ready else ("NotReady" if ready is False else "absent"),
                "generation": generation,
            })  # fmt: skip
        return rows

    def fill_disk(self, name: str) -> None:
        """Fill host NAME's /nix file system: copies and activations then fail with
        "No space left on device" until `free_disk`."""
        avail = self._checked(name, ["stat", "-f", "-c", "%a %S", "/nix"]).decode().split()
        size = int(avail[0]) * int(avail[1])
        self._checked(name, ["fallocate", "-l", str(size), FILLER])

    def free_disk(self, name: str) -> None:
        self._checked(name, ["rm", "-f", FILLER])

    # ------------------------------------------------------------------ down

    def down(self) -> None:
        """Remove every namespace, process, mount and file of this lab. Idempotent; also
        cleans up after a crash (from lab.json, or the subnet registry without it)."""
        teardown.down(self.dir)
        self._state = None


def _settled(node: dict[str, Any]) -> bool:
    """Initialised by the cloud controller, and no device plugin still to register
    (guest/k3s_nodes.py: both take a moment after a k3s start)."""
    taints = node.get("spec", {}).get("taints", []) or []
    alloc = node.get("status", {}).get("allocatable", {}) or {}
    return not any(
        t.get("key") == "node.cloudprovider.kubernetes.io/uninitialized" for t in taints
    ) and (all(v != "0" for k, v in alloc.items() if "/" in k))


def _is_ready(node: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])
    )
