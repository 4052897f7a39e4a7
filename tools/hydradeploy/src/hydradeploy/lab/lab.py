"""The Lab: brings a set of test hosts up, builds closures for them, injects faults,
and tears everything down again (also after a crash), driven by lab.json."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydradeploy.errors import OperationFailed, UserError
from hydradeploy.lab import (
    base,
    cache,
    hostfs,
    inventory_out,
    network,
    payload,
    processes,
    requirements,
    sshd,
    store,
    teardown,
)
from hydradeploy.lab import closure as closures
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
BOOT_TIMEOUT = 60  # seconds for a host's systemd to finish booting


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
        token = secrets.token_hex(32)
        with ThreadPoolExecutor(max_workers=min(8, len(state.hosts))) as pool:
            host_keys = dict(
                zip(
                    state.hosts,
                    pool.map(
                        lambda n: hostfs.prepare(self._host_dir(n), n, token, client_pub),
                        state.hosts,
                    ),
                    strict=True,
                )
            )
        for name in state.hosts:
            # No substituter until `lab cache` adds the lab's (the lab is offline).
            conf = self._host_dir(name) / "upper" / cache.NIX_CONF.lstrip("/")
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(cache.nix_conf(None, None))
        self.known_hosts_path.write_text(
            sshd.known_hosts_lines({n: (h.address, host_keys[n]) for n, h in state.hosts.items()})
        )
        inventory_out.write(self.inventory_path, self._lab_inventory(source, prefix, host_keys))
        from hydradeploy.inventory import load_inventory

        load_inventory(self.inventory_path)
        root = base.ensure(self._say)
        self._say("generation-1 closures")
        gen1 = {name: self.closure(name, revision="1") for name in state.hosts}
        network.create_bridge(state.bridge, state.gateway)
        self._say(f"booting {len(state.hosts)} hosts (systemd-nspawn)")
        with ThreadPoolExecutor(max_workers=len(state.hosts)) as pool:
            for _ in pool.map(lambda n: self._start_host(n, root, gen1[n]), state.hosts):
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

    def _start_host(self, name: str, root: Path, gen1: str) -> None:
        state = self._require()
        host = state.hosts[name]
        hdir = self._host_dir(name)
        network.create_host_link(host.netns, host.veth, state.bridge, host.address)
        log = open(hdir / "keeper.log", "wb")  # noqa: SIM115 - handed to the child
        with log:
            proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{host.netns}", "--",
                 "unshare", "--mount", "--propagation", "private", "--",
                 sys.executable, "-I", str(processes.KEEPER), str(hdir), name,
                 str(state.store_mb), str(root), host.netns],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True, cwd="/",
            )  # fmt: skip
        host.keeper_pid = proc.pid
        self._save()
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        proc.stdout.close()
        if line != "ready":
            raise OperationFailed(f"lab: host {name}: mounts not set up: {line or 'no answer'}")
        self.wait_booted(name)
        self._install_system(name, gen1)
        self._wait_sshd(name)
        self._say(f"{name}: booted, generation 1 active, ssh.service up")

    def leader_pid(self, name: str) -> int | None:
        """The runner's PID of host NAME's PID 1 (systemd), None while it is not up. A
        reboot gives a new one."""
        return processes.machine_leader(self._host_dir(name) / "nspawn.pid")

    def boots(self, name: str) -> int:
        """How many times host NAME has booted (1 after `up`)."""
        try:
            return int((self._host_dir(name) / "nspawn.pid").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            return 0

    def wait_booted(self, name: str, timeout: float = BOOT_TIMEOUT) -> str:
        """Until host NAME's systemd has finished booting; returns its state (running,
        degraded…), as `systemctl is-system-running --wait` does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.leader_pid(name) is not None:
                try:
                    proc = self._exec(
                        name, ["systemctl", "is-system-running", "--wait"],
                        timeout=max(1.0, deadline - time.monotonic()),
                    )  # fmt: skip
                except (OperationFailed, subprocess.TimeoutExpired):
                    proc = None
                state = proc.stdout.decode().strip() if proc else ""
                if state in ("running", "degraded", "maintenance"):
                    return state
            time.sleep(0.1)
        raise OperationFailed(f"lab: host {name}: systemd did not finish booting in {timeout:.0f}s")

    def reboot(self, name: str) -> None:
        """`systemctl reboot` inside host NAME (its keeper boots it again)."""
        self._exec(name, ["systemctl", "reboot"], timeout=30)

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

    def _wait_sshd(self, name: str, timeout: float = 15) -> None:
        address = self.address(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not network.link_is_up(self._host(name).veth):
                return  # cut: sshd runs, nobody can reach it
            try:
                with socket.create_connection((address, 22), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise OperationFailed(f"lab: host {name}: ssh.service is not listening on {address}:22")

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
        manifests: Path | None = None, *, restart_sshd: bool = False,
        payload_mib: int = 0, payload_seed: str | None = None,
    ) -> str:  # fmt: skip
        """Build a system closure for host NAME in the runner's store (k3s settings from
        the lab inventory; optionally a fault; MANIFESTS: a k8s/ directory it deploys).
        Each call is a new build (revision). restart_sshd: a changed (still valid)
        sshd_config, so activating it restarts ssh.service. payload_mib: that many MiB
        of incompressible data in store paths the closure references (lab/payload.py;
        payload_seed, default the host name, decides their contents)."""
        from hydradeploy.inventory import load_inventory

        payload.check(payload_mib, payload_seed)
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
        if restart_sshd:
            settings["sshd_revision"] = revision
        return closures.build(
            settings, manifests, payload_mib=payload_mib, payload_seed=payload_seed
        )

    def _next_build(self) -> int:
        """A build number no other process using this lab has handed out (the CLI and a
        test may build closures for the same lab at once)."""
        state = self._require()
        with self._lock, open(self.dir / "lab.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            on_disk = LabState.load(self.dir)
            state.builds = max(state.builds, on_disk.builds if on_disk else 0) + 1
            if on_disk is not None and on_disk.cache_pid:  # started by another process
                state.cache_pid, state.cache_port = on_disk.cache_pid, on_disk.cache_port
            state.save()
            return state.builds + 1

    # ------------------------------------------------------------------ binary cache

    @property
    def cache_dir(self) -> Path:
        return self.dir / cache.CACHE_DIR

    @property
    def cache_url(self) -> str | None:
        """http://GATEWAY:PORT of the lab's binary cache, None before the first `cache`
        (read from lab.json: another process may have started the server)."""
        state = LabState.load(self.dir) or self._require()
        return f"http://{state.gateway}:{state.cache_port}" if state.cache_port else None

    @property
    def cache_public_key(self) -> str | None:
        path = self.dir / cache.PUBLIC_KEY
        return path.read_text().strip() if path.exists() else None

    def cache(self, paths: Sequence[str]) -> str:
        """Put the closures of PATHS (store paths of the runner's store, e.g. a lab
        closure or only its payload paths, see payload.paths_of) into the lab's signed
        binary cache, make sure its HTTP server runs, and make every host's nix.conf use
        it as its substituter, trusting its key. Returns the cache URL. Idempotent; each
        call adds paths to the same cache."""
        state = self._require()
        if not paths:
            raise UserError("lab cache: give at least one store path")
        cache.check_paths(list(paths))
        public = cache.generate_key(
            self.dir / cache.SECRET_KEY, self.dir / cache.PUBLIC_KEY, f"hydra-lab-{state.index}-1"
        )
        self.cache_dir.mkdir(exist_ok=True)
        cache.fill(self.cache_dir, list(paths), self.dir / cache.SECRET_KEY)
        url = self._cache_server()
        conf = cache.nix_conf(url, public)
        for name in state.hosts:
            self.write_nix_conf(name, conf)
        return url

    def _cache_server(self) -> str:
        """The running cache server's URL; starts it when it is not running."""
        state = self._require()
        with self._lock, open(self.dir / "lab.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            on_disk = LabState.load(self.dir)
            if on_disk is not None and on_disk.cache_pid and cache.is_server(on_disk.cache_pid):
                state.cache_pid, state.cache_port = on_disk.cache_pid, on_disk.cache_port
            else:
                pid, port = cache.serve(
                    self.cache_dir, state.gateway, state.bridge, self.dir / STATE_FILE,
                    self.dir / cache.LOG,
                )  # fmt: skip
                state.cache_pid, state.cache_port = pid, port
                if on_disk is not None:
                    state.builds = max(state.builds, on_disk.builds)
                state.save()
        url = self.cache_url
        assert url is not None
        return url

    def write_nix_conf(self, name: str, text: str) -> None:
        """Replace host NAME's /etc/nix/nix.conf (atomically, inside the host)."""
        tmp = cache.NIX_CONF + ".tmp"
        self._checked(
            name,
            ["sh", "-c", f"mkdir -p /etc/nix && cat > {tmp} && mv {tmp} {cache.NIX_CONF}"],
            input=text.encode(),
        )

    # ------------------------------------------------------------------ inside a host

    def _exec(
        self, name: str, argv: Sequence[str], input: bytes | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[bytes]:
        keeper = self._host(name).keeper_pid
        if keeper is None or not processes.is_keeper(keeper):
            raise OperationFailed(f"lab: host {name} is not running (its keeper process is gone)")
        pid = self.leader_pid(name)
        if pid is None:
            raise OperationFailed(f"lab: host {name} is not booted (rebooting or powered off)")
        return subprocess.run(
            ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "--", *argv],
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
        """Stop ssh.service (Debian's unit has KillMode=process: open sessions stay)."""
        self._checked(name, ["systemctl", "stop", "ssh.service"])

    def start_sshd(self, name: str) -> None:
        self._checked(name, ["systemctl", "start", "ssh.service"])
        self._wait_sshd(name)

    def slow(self, name: str, ms: int) -> None:
        """Add MS ms of latency each way on the host's link (0 removes it)."""
        if ms < 0:
            raise UserError(f"lab slow: {ms} ms must be >= 0")
        host = self._host(name)
        network.set_delay(host.netns, host.veth, ms)

    def status(self) -> list[dict[str, Any]]:
        """Per host: address, link, sshd, k3s unit and when it last started, node Ready,
        system state, system generation, boots."""
        try:
            nodes = {n["metadata"]["name"]: _is_ready(n) for n in self.nodes()}
        except OSError:
            nodes = {}
        rows = []
        for name, host in self.hosts.items():
            state = self._host(name)
            facts = self._unit_facts(name)
            try:
                generation: int | None = int(facts.get("profile", "").split("-")[1])
            except (ValueError, IndexError):
                generation = None
            ready = nodes.get(name)
            rows.append({
                "host": name, "role": host.role, "address": host.address,
                "link": "up" if network.link_is_up(state.veth) else "cut",
                "system": facts.get("system", "host down"),
                "sshd": "running" if facts.get("ssh") == "active" else "stopped",
                "k3s": facts.get("k3s") or "unknown",
                "k3s_started_at": facts.get("k3s_started_at") or None,
                "node": "Ready" if ready else ("NotReady" if ready is False else "absent"),
                "generation": generation,
                "boots": self.boots(name),
            })  # fmt: skip
        return rows

    def _unit_facts(self, name: str) -> dict[str, str]:
        """What systemd says about the host, in one call inside it."""
        script = (
            'echo "system=$(systemctl is-system-running)"; echo "k3s=$(systemctl is-active k3s)"; '
            'echo "ssh=$(systemctl is-active ssh)"; '
            'echo "k3s_started_at=$(systemctl show -p ActiveEnterTimestamp --value k3s)"; '
            f'echo "profile=$(readlink {store.SYSTEM_PROFILE})"'
        )
        try:
            out = self.run(name, ["sh", "-c", script], timeout=10).stdout
        except (OperationFailed, subprocess.TimeoutExpired):
            return {}
        return dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)

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
