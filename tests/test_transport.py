"""The one SSH transport: endpoint validation, the host-key policy, closed handshakes,
quiet failures, the pool's kube choice, and whole command sequences of flows run
against a recording fake (tests/transport_fake.py)."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest
from hydradeploy.deploy.engine import Engine, HostDeploy, Options
from hydradeploy.deploy.models import Closure, Goal, HostReport, Outcome
from hydradeploy.deploy.progress import Progress
from hydradeploy.inventory import Host, SSHSettings, load_inventory
from hydradeploy.transport import (
    BadTarget,
    HostKeyChanged,
    HostKeyRefused,
    Unreachable,
    connect,
    hostkeys,
    openssh,
    target,
)
from hydradeploy.transport.pool import Pool
from transport_fake import FakeNet

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def inv():
    return load_inventory(REPO / "hosts" / "inventory.toml")


def _host(**ssh: object) -> Host:
    return Host("h1", "127.0.0.1", "agent", ssh=SSHSettings(**ssh))  # type: ignore[arg-type]


# ---------------------------------------------------------------- endpoints


@pytest.mark.parametrize(
    ("jump", "says"),
    [
        ("ops@bastion:notaport", "port 'notaport' is not a number"),
        ("ops@bastion:99999", "port 99999 is out of range"),
        ("@bastion", "the user before '@' is empty"),
        ("ops@:22", "is not a host name or address"),
        ("ops@[fd00::1", "missing ']'"),
    ],
)
def test_a_bad_jump_host_is_one_line_naming_the_host(jump: str, says: str) -> None:
    with pytest.raises(BadTarget) as err:
        target.validate([_host(jump=jump)])
    assert str(err.value).startswith("h1: ssh.jump")
    assert says in str(err.value) and "\n" not in str(err.value)


def test_jump_host_forms() -> None:
    assert str(target.jump(_host(user="ops", jump="bastion"))) == "ops@bastion:22"
    assert str(target.jump(_host(jump="j@bastion:2222"))) == "j@bastion:2222"
    assert str(target.jump(_host(jump="[fd00::1]:23"))) == "root@fd00::1:23"


def test_an_empty_user_is_refused_not_the_local_user() -> None:
    with pytest.raises(
        BadTarget, match=r"h1: ssh.user: user '' is not a valid user name"
    ):
        target.endpoint(_host(user=""))


def test_ssh_goes_to_target_host_when_set_while_address_stays_the_node_ip(
    tmp_path: Path,
) -> None:
    h = replace(
        _host(port=2222, host_key="ssh-ed25519 " + "A" * 68),
        target_host="ai.example.org",
    )
    assert str(target.endpoint(h)) == "root@ai.example.org:2222"
    assert target.endpoint(h).known_hosts_name == "[ai.example.org]:2222"
    assert openssh.store_uri(h) == "ssh://hydra-h1"
    assert (
        "  HostName ai.example.org\n  User root\n  Port 2222\n"
        in openssh.config_text(h, Path("/kh"))
    )
    with pytest.raises(
        BadTarget, match="h1: target_host: 'bad host' is not a host name"
    ):
        target.endpoint(replace(h, target_host="bad host"))


def test_known_hosts_name_has_the_port_when_not_22() -> None:
    assert target.endpoint(_host(port=2222)).known_hosts_name == "[127.0.0.1]:2222"
    assert target.endpoint(_host()).known_hosts_name == "127.0.0.1"


# ---------------------------------------------------------------- host-key policy


def _new_key() -> paramiko.Ed25519Key:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/k"], check=True
        )
        return paramiko.Ed25519Key.from_private_key_file(f"{d}/k")


KEY = _new_key()
KEY_LINE = f"ssh-ed25519 {KEY.get_base64()}"


def test_the_inventory_host_key_is_trusted_under_the_hosts_name(tmp_path: Path) -> None:
    h = _host(port=2222, host_key=KEY_LINE, known_hosts=tmp_path / "kh")
    (tmp_path / "kh").write_text("")
    keys = hostkeys.trusted(h, target.endpoint(h), None)
    assert keys.lookup("[127.0.0.1]:2222")["ssh-ed25519"] == KEY


def test_a_malformed_host_key_is_an_error_not_skipped(tmp_path: Path) -> None:
    h = _host(host_key="ssh-ed25519 not-base64!", known_hosts=tmp_path / "kh")
    (tmp_path / "kh").write_text("")
    with pytest.raises(
        Unreachable, match="h1: inventory ssh.host_key is not a public key"
    ):
        hostkeys.trusted(h, target.endpoint(h), None)


def test_a_configured_known_hosts_file_that_is_missing_is_refused(
    tmp_path: Path,
) -> None:
    h = _host(known_hosts=tmp_path / "absent")
    with pytest.raises(Unreachable, match=r"h1: known_hosts file .*absent not found"):
        hostkeys.trusted(h, target.endpoint(h), None)


def test_openssh_config_checks_the_jump_host_with_the_same_known_hosts(
    tmp_path: Path,
) -> None:
    kh = tmp_path / "kh"
    h = _host(user="ops", port=2222, key=Path("/k/id"), jump="j@bastion:23")
    text = openssh.config_text(h, kh)
    lines = [ln.strip() for ln in text.splitlines()]
    assert lines[:4] == ["Host hydra-h1", "HostName 127.0.0.1", "User ops", "Port 2222"]
    assert "StrictHostKeyChecking yes" in lines and f"UserKnownHostsFile {kh}" in lines
    assert "IdentityFile /k/id" in lines and "IdentitiesOnly yes" in lines
    assert "ProxyJump" not in text and "StrictHostKeyChecking=no" not in text
    proxy = next(ln for ln in lines if ln.startswith("ProxyCommand "))
    assert proxy.startswith(
        "ProxyCommand ssh -F /dev/null -W %h:%p -p 23 -o StrictHostKeyChecking=yes"
    )
    assert f"UserKnownHostsFile={kh}" in proxy and proxy.endswith("j@bastion")
    assert "Compression yes" not in text
    assert "Compression yes" in openssh.config_text(h, kh, compress=True)
    # the IPv6 address stays out of the store URI (it is the alias' HostName)
    v6 = replace(h, address="fd00::1")
    assert openssh.store_uri(v6) == "ssh://hydra-h1"
    assert "HostName fd00::1" in openssh.config_text(v6, kh)


def test_openssh_config_quotes_paths_with_spaces_and_refuses_quotes(
    tmp_path: Path,
) -> None:
    text = openssh.config_text(_host(key=Path("/my keys/id%1")), tmp_path / "kh")
    assert 'IdentityFile "/my keys/id%%1"' in text
    with pytest.raises(BadTarget, match=r"h1: ssh.key .*quotes and newlines"):
        openssh.config_text(_host(key=Path('/k/"id')), tmp_path / "kh")


def test_store_uri_runs_the_remote_nix_under_sudo_for_a_non_root_sudo_user() -> None:
    assert openssh.store_uri(_host(user="root", sudo=True)) == "ssh://hydra-h1"
    assert openssh.store_uri(_host(user="ops")) == "ssh://hydra-h1"
    assert (
        openssh.store_uri(_host(user="ops", sudo=True))
        == "ssh://hydra-h1?remote-program=sudo%20-n%20nix-store"
    )
    assert (
        openssh.store_uri(_host(user="ops", sudo=True), "ssh-ng")
        == "ssh-ng://hydra-h1?remote-program=sudo%20-n%20nix-daemon"
    )


def test_nix_sshopts_is_one_config_file_with_the_inventory_key(tmp_path: Path) -> None:
    (tmp_path / "kh").write_text("")
    h = _host(host_key=KEY_LINE, known_hosts=tmp_path / "kh")
    with openssh.nix_sshopts(h) as opts:
        flag, cfg = opts.split()  # Nix 2.8 splits NIX_SSHOPTS on whitespace
        assert flag == "-F"
        text = Path(cfg).read_text()
        path = text.split("UserKnownHostsFile ")[1].split()[0]
        assert Path(path).read_text() == f"127.0.0.1 ssh-ed25519 {KEY.get_base64()}\n"
    assert not Path(path).exists() and not Path(cfg).exists()


# ---------------------------------------------------------------- refused handshakes


class _Server(paramiko.ServerInterface):
    pass


@contextlib.contextmanager
def _serving(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A local TCP server that hands each connection to `handle` (in its one thread)
    until the block ends; yields its port."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    stop = threading.Event()

    def serve() -> None:
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                continue
            handle(conn)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        yield lsock.getsockname()[1]
    finally:
        stop.set()
        th.join(timeout=15)
        lsock.close()


@contextlib.contextmanager
def _stub_server(key: paramiko.PKey) -> Iterator[int]:
    """An SSH server (paramiko's server mode) that presents `key` and accepts no one."""
    transports: list[paramiko.Transport] = []

    def handle(conn: socket.socket) -> None:
        t = paramiko.Transport(conn)
        t.add_server_key(key)
        transports.append(t)
        try:
            t.start_server(server=_Server())
        except (paramiko.SSHException, OSError, EOFError):
            t.close()

    try:
        with _serving(handle) as port:
            yield port
    finally:
        for t in transports:
            t.close()


@pytest.fixture
def sshd_stub() -> Iterator[int]:
    """A stub server presenting KEY."""
    with _stub_server(KEY) as port:
        yield port


def test_a_host_without_an_ed25519_key_is_named_so_and_other_mismatches_keep_their_words(
    tmp_path: Path,
) -> None:
    from hydradeploy.transport.ssh import presented_key

    with (
        _stub_server(paramiko.RSAKey.generate(2048)) as port,
        pytest.raises(Unreachable, match="the host offers no ed25519 host key"),
    ):
        presented_key(_host(port=port, key=tmp_path / "none"), timeout=5)
    # no key exchange in common: not a host-key problem, and not reported as one
    with (
        _kexinit_server(["no-such-kex@example.org"]) as port,
        pytest.raises(Unreachable) as err,
    ):
        presented_key(_host(port=port, key=tmp_path / "none"), timeout=5)
    assert "ed25519" not in str(err.value) and "no acceptable kex" in str(err.value), (
        err.value
    )


@contextlib.contextmanager
def _kexinit_server(kex: list[str]) -> Iterator[int]:
    """A server that sends its banner and a KEXINIT offering only `kex` (RFC 4253
    sections 4.2, 6 and 7.1: packet length, padding length, payload, 4+ padding bytes
    to a multiple of 8), then waits for the client to give up."""

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.sendall(b"SSH-2.0-stub\r\n")
            m = paramiko.Message()
            m.add_byte(bytes([20]))  # SSH_MSG_KEXINIT
            m.add_bytes(bytes(16))  # cookie
            m.add_list(kex)
            m.add_list(["ssh-ed25519"])
            for algorithms in (["aes128-ctr"], ["hmac-sha2-256"], ["none"], []):
                m.add_list(algorithms)  # client to server, then server to client
                m.add_list(algorithms)
            m.add_boolean(False)
            m.add_int(0)
            payload = m.asbytes()
            pad = 8 - (5 + len(payload)) % 8
            pad += 8 if pad < 4 else 0
            conn.sendall(
                struct.pack(">IB", 1 + len(payload) + pad, pad) + payload + bytes(pad)
            )
            conn.settimeout(10)
            with contextlib.suppress(OSError):
                while conn.recv(4096):
                    pass

    with _serving(handle) as port:
        yield port


def _client_threads() -> int:
    return sum(
        1
        for t in threading.enumerate()
        if isinstance(t, paramiko.Transport) and not t.server_mode
    )


def test_an_unknown_host_key_is_refused_closed_and_quiet(
    sshd_stub: int, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "kh").write_text("")
    h = _host(port=sshd_stub, known_hosts=tmp_path / "kh", key=tmp_path / "none")
    before = _client_threads()
    for _ in range(5):
        with pytest.raises(HostKeyRefused) as err:
            connect(h, timeout=5)
        assert not isinstance(err.value, HostKeyChanged)  # nothing known: not "changed"
        assert "h1: host key of [127.0.0.1]:" in str(err.value)
        assert "is unknown" in str(err.value) and "refused, not added" in str(err.value)
    deadline = time.monotonic() + 5
    while _client_threads() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _client_threads() == before, "a refused handshake left its transport running"
    _out, errtext = capfd.readouterr()
    assert "Exception" not in errtext and "Traceback" not in errtext and errtext == ""


def test_verbose_shows_paramikos_details(
    sshd_stub: int, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from hydradeploy.transport.ssh import set_verbose

    (tmp_path / "kh").write_text("")
    h = _host(port=sshd_stub, known_hosts=tmp_path / "kh", key=tmp_path / "none")
    set_verbose(True)
    try:
        with pytest.raises(Unreachable):
            connect(h, timeout=5)
    finally:
        set_verbose(False)
    assert "ssh: " in capfd.readouterr().err


def test_a_connection_opened_by_with_follows_the_same_policy(
    sshd_stub: int, tmp_path: Path
) -> None:
    from hydradeploy.transport import Connection

    (tmp_path / "kh").write_text("")
    h = _host(port=sshd_stub, known_hosts=tmp_path / "kh", key=tmp_path / "none")
    with (
        pytest.raises(Unreachable, match="is unknown"),
        Connection(h, connect_timeout=5),
    ):
        pass


def test_a_changed_host_key_names_both_fingerprints(
    sshd_stub: int, tmp_path: Path
) -> None:
    other = _new_key()
    h = _host(
        port=sshd_stub,
        known_hosts=tmp_path / "kh",
        host_key=f"ssh-ed25519 {other.get_base64()}",
        key=tmp_path / "none",
    )
    (tmp_path / "kh").write_text("")
    with pytest.raises(HostKeyChanged) as err:  # the engine stops retrying on this type
        connect(h, timeout=5)
    msg = str(err.value)
    assert msg.startswith("h1: host key of [127.0.0.1]:") and "changed" in msg
    assert KEY.fingerprint in msg and other.fingerprint in msg


def test_a_closed_port_is_one_line_with_the_cause() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(Unreachable) as err:
        connect(_host(port=port), timeout=3)
    assert str(err.value).startswith(f"h1: cannot connect to root@127.0.0.1:{port}: ")
    assert "refused" in str(err.value).lower()


# ---------------------------------------------------------------- the pool


def test_the_pool_asks_the_cluster_init_server_first_then_another(inv) -> None:
    net = FakeNet()
    pool = Pool(inv, net.connect)
    init = inv.cluster_init.name
    assert pool.kube().name == init  # type: ignore[union-attr]
    pool.close_all()
    net.down.add(init)
    others = [s.name for s in inv.servers if s.name != init]
    assert (pool.kube().name if pool.kube() else None) == (
        others[0] if others else None
    )


def test_the_pool_reuses_one_connection_per_host(inv) -> None:
    net = FakeNet()
    with Pool(inv, net.connect) as pool:
        h = inv.host("hydra-compute")
        assert pool.get(h) is pool.get(h)
        errors = pool.open_many([h, inv.host("hydra-amd")])
    assert errors == {} and net.opened.count("hydra-compute") == 1


# ---------------------------------------------------------------- whole flows


PROBE_OUT = (
    "kind=nixos\ncurrent=/nix/store/{h}-old\ncurrent_time=100\nprofile_link=system-4-link\n"
    "profile_path=/nix/store/{h}-old\nstore_free_kb=1000000\nk3s=active\nnow=200\n"
)


def _deploy(
    inv, goal: Goal, user: str = "root", sudo: bool = False
) -> tuple[FakeNet, HostReport]:
    host = inv.host("hydra-compute")
    host = replace(host, ssh=replace(host.ssh, user=user, sudo=sudo))
    net = FakeNet()
    net.reply(host.name, "echo kind=nixos", PROBE_OUT.format(h="a" * 32))
    net.reply(host.name, "mkdir", "acquired\n")
    opts = Options(goal=goal, closures={})
    engine = Engine(
        inv,
        opts,
        Progress([host.name], stream=io.StringIO()),
        "run1",
        Pool(inv, net.connect),
    )
    rep = HostReport(host.name)
    HostDeploy(
        engine, host, rep, Closure("/nix/store/" + "b" * 32 + "-new", "prebuilt")
    ).run()
    return net, rep


def _summary(lines: list[str]) -> list[str]:
    """Each command line cut to what tells it apart (the scripts are long)."""
    out = []
    for ln in lines:
        if "echo kind=nixos" in ln:
            out.append("preflight")
        elif "if mkdir" in ln:  # before guard.sh: the lock looks for running guards
            out.append("lock")
        elif "reached.tmp" in ln:
            out.append("reached")
        elif "NRestarts" in ln:
            out.append("k3s restarts")
        elif "hydradeploy/verified" in ln:
            out.append("verified")
        elif "guard.sh" in ln:
            # the guard's last argument: what it does to the profile before activating
            out.append("arm " + ("rollback" if "-rollback " in ln else "activate")
                       + " profile=" + ln.split()[-1])  # fmt: skip
        elif "while" in ln and ln.split()[-2:-1] == ["activated"]:
            out.append("wait for activation")
        elif "while" in ln and ln.split()[-2:-1] == ["rolledback"]:
            out.append("wait for the rollback")
        elif 'ln -s "$want"' in ln:
            out.append("decide " + ln.rsplit(" ", 1)[-1])
        elif "if mkdir" in ln:
            out.append("lock")
        elif "deploys.jsonl" in ln:
            out.append("record")
        elif 'rm -rf "$lock"' in ln:
            out.append("unlock")
        else:
            out.append(ln.replace("/nix/store/" + "b" * 32 + "-new", "NEW"))
    return out


def test_dry_activate_runs_exactly_preflight_lock_dry_activate_unlock_record(
    inv,
) -> None:
    net, rep = _deploy(inv, Goal.DRY_ACTIVATE)
    assert rep.outcome is Outcome.UNCHANGED, rep.message
    assert _summary(net.lines("hydra-compute")) == [
        "preflight", "lock", "NEW/bin/switch-to-configuration dry-activate", "unlock", "record",
    ]  # fmt: skip


def test_boot_sets_the_profile_then_the_boot_entry_with_sudo_for_a_non_root_user(
    inv,
) -> None:
    net, rep = _deploy(inv, Goal.BOOT, user="ops", sudo=True)
    assert rep.outcome is Outcome.UNCHANGED, rep.message
    lines = net.lines("hydra-compute")
    assert all(ln.startswith("sudo -n -- ") for ln in lines)
    assert _summary([ln.removeprefix("sudo -n -- ") for ln in lines]) == [
        "preflight", "lock",
        "nix-env -p /nix/var/nix/profiles/system --set NEW",
        "NEW/bin/switch-to-configuration boot",
        "preflight", "unlock", "record",
    ]  # fmt: skip


def test_a_held_lock_stops_the_host_after_preflight_and_releases_nothing(inv) -> None:
    host = inv.host("hydra-ai")  # the first wave: no server gate before it
    net = FakeNet()
    net.reply(host.name, "echo kind=nixos", PROBE_OUT.format(h="a" * 32))
    net.reply(
        host.name,
        "if mkdir",
        "held\nholder=alice@elsewhere pid 1 since T (run x)\nrun=x\n",
    )
    progress = Progress([host.name], stream=io.StringIO())
    engine = Engine(inv, Options(), progress, "r", Pool(inv, net.connect))
    reps = engine.run([host], None)
    assert reps[0].outcome is Outcome.LOCKED and "alice@elsewhere" in reps[0].message
    assert _summary(net.lines(host.name)) == ["preflight", "lock", "record"]


def test_a_host_that_is_not_nixos_is_refused_at_preflight(inv) -> None:
    host = inv.host("hydra-ai")  # the first wave: no server gate before it
    net = FakeNet()
    net.reply(host.name, "echo kind=nixos", "kind=other\n")
    progress = Progress([host.name], stream=io.StringIO())
    engine = Engine(inv, Options(), progress, "r", Pool(inv, net.connect))
    reps = engine.run([host], None)
    assert reps[0].failed_step == "preflight" and "not a NixOS host" in reps[0].message
    assert _summary(net.lines(host.name)) == ["preflight"]  # no lock, no record


def _switch(inv, monkeypatch, healthy: bool) -> tuple[FakeNet, HostReport]:
    """A switch of hydra-ai (first wave) on the fake; the join checks (another module's
    job, tested there) are replaced by their verdict."""
    from hydradeploy.deploy import engine as engine_mod
    from hydradeploy.deploy.models import CheckResult

    verdict = [] if healthy else [CheckResult("node-ready", False, "NotReady")]
    monkeypatch.setattr(engine_mod.checks, "wait_healthy", lambda *a, **k: verdict)
    host = inv.host("hydra-ai")
    net = FakeNet()
    new = Closure("/nix/store/" + "b" * 32 + "-new", "prebuilt")
    real_probe = engine_mod.probe.probe

    def probe(
        conn, *a, **k
    ):  # after the activation (until a rollback) the new closure runs
        st = real_probe(conn, *a, **k)
        seen = _summary(net.lines(host.name))
        if "wait for activation" in seen and "wait for the rollback" not in seen:
            st = replace(st, current=new.path, profile_path=new.path)
        return st

    monkeypatch.setattr(engine_mod.probe, "probe", probe)
    net.reply(host.name, "echo kind=nixos", PROBE_OUT.format(h="a" * 32))
    net.reply(host.name, "if mkdir", "acquired\n")
    net.reply(host.name, "guard.sh", "systemd hydradeploy-guard-x\n")
    net.reply(host.name, 'ln -s "$want"', "confirmed\n")
    net.reply(host.name, "reached.tmp", "reached\n")
    # the guard's status (watchdog.STATUS): key=value lines, waited for by the file named
    # after the state directory
    net.reply(host.name, "-activate activated ", "activated=0 1000\n")
    net.reply(
        host.name,
        "-activate rolledback ",
        "activated=0 1000\nrolledback=0 guard 1001\n",
    )
    opts = Options(goal=Goal.SWITCH, check_timeout=0, stability_window=0)
    progress = Progress([host.name], stream=io.StringIO())
    engine = Engine(inv, opts, progress, "run1", Pool(inv, net.connect))
    reps = engine.run([host], {host.name: new})
    return net, reps[0]


def test_switch_runs_the_guard_and_confirms_over_a_new_connection(
    inv, monkeypatch
) -> None:
    net, rep = _switch(inv, monkeypatch, healthy=True)
    assert rep.outcome is Outcome.DEPLOYED, rep.message
    assert _summary(net.lines("hydra-ai")) == [
        "preflight", "lock",
        # no profile round trip before the guard: the guard sets it (issue 15)
        "arm activate profile=set", "wait for activation",
        "reached",  # on the second connection: the guard stays armed through the checks
        "preflight",  # what runs now, after the checks
        "decide confirmed",  # only now
        "unlock", "verified", "record",
    ]  # fmt: skip
    assert net.opened == ["hydra-ai", "hydra-ai"]  # the working one, then the confirm
    assert rep.ssh_connections == 0  # counted by transport.connect, not the stand-in


def test_failed_checks_roll_back_through_a_new_guard_and_recheck(
    inv, monkeypatch
) -> None:
    net, rep = _switch(inv, monkeypatch, healthy=False)
    assert rep.outcome is Outcome.ROLLED_BACK and rep.failed_step == "checks", (
        rep.message
    )
    assert _summary(net.lines("hydra-ai")) == [
        "preflight", "lock",
        # no profile round trip before the guard: the guard sets it (issue 15)
        "arm activate profile=set", "wait for activation", "reached",
        "preflight",  # after the checks: what runs
        "decide rollback", "wait for the rollback",  # through the still-armed guard
        "preflight",  # re-check on the old generation
        "unlock", "record",
    ]  # fmt: skip


def test_rollback_targets_read_each_hosts_generations(inv) -> None:
    from hydradeploy.deploy.generations import rollback_targets

    net = FakeNet(down={"hydra-amd"})
    gens = "   4   2026-11-20 10:00:01   \n   5   2026-11-21 05:01:19   (current)\n"
    net.reply("hydra-compute", "--list-generations", gens)
    net.reply(
        "hydra-compute", "hydradeploy/verified", "4\n"
    )  # passed its checks (verified.py)
    net.reply("hydra-compute", "readlink -f", "/nix/store/" + "c" * 32 + "-old\n")
    hosts = [inv.host("hydra-compute"), inv.host("hydra-amd")]
    closures, problems = rollback_targets(inv, hosts, None, Pool(inv, net.connect))
    assert closures["hydra-compute"].generation == 4
    assert closures["hydra-compute"].path.endswith("-old")
    assert len(problems) == 1 and problems[0].startswith("hydra-amd: cannot connect")
    lines = net.lines("hydra-compute")
    assert lines[0] == "nix-env -p /nix/var/nix/profiles/system --list-generations"
    assert (
        "/var/lib/hydradeploy/verified" in lines[1]
    )  # the default: the last verified one
    assert lines[2:] == [
        "sh -c 'readlink -f \"$1\"' hydradeploy /nix/var/nix/profiles/system-4-link",
    ]


def test_an_unreachable_host_is_reported_at_connect_and_nothing_runs(inv) -> None:
    host = inv.host("hydra-compute")
    net = FakeNet(down={host.name})
    engine = Engine(
        inv,
        Options(),
        Progress([host.name], stream=io.StringIO()),
        "r",
        Pool(inv, net.connect),
    )
    rep = HostReport(host.name)
    HostDeploy(engine, host, rep, None).run()
    assert rep.outcome is Outcome.UNREACHABLE and rep.failed_step == "connect"
    assert net.calls == []


def test_secrets_check_sends_the_ciphertext_to_age_with_sudo_only_for_non_root(
    inv,
) -> None:
    from hydradeploy.secrets.remote import check_on_hosts

    root = inv.host("hydra-ai")
    ops = replace(inv.host("hydra-amd"), ssh=SSHSettings(user="ops", sudo=True))
    net = FakeNet(down={"hydra-compute"})
    net.reply(
        "hydra-amd",
        "age -d",
        rc=1,
        stderr="age: error: no identity matched any of the recipients\n",
    )
    work = {
        "hydra-ai": (root, {"a.age": b"CIPHER-A"}),
        "hydra-amd": (ops, {"a.age": b"CIPHER-A"}),
        "hydra-compute": (inv.host("hydra-compute"), {"a.age": b"x"}),
    }
    results = {r.host: r for r in check_on_hosts(work, connector=net.connect)}
    assert net.lines("hydra-ai") == [
        "age -d -i /etc/ssh/ssh_host_ed25519_key -o /dev/null"
    ]
    assert net.lines("hydra-amd") == [
        "sudo -n -- age -d -i /etc/ssh/ssh_host_ed25519_key -o /dev/null"
    ]
    assert net.stdin["hydra-ai"] == [b"CIPHER-A"]
    assert results["hydra-ai"].ok
    assert results["hydra-amd"].detail == "no identity matched any of the recipients"
    assert results["hydra-compute"].detail.startswith("cannot connect: hydra-compute:")


def test_no_module_but_the_transport_imports_paramiko_or_fabric() -> None:
    src = REPO / "tools" / "hydradeploy" / "src" / "hydradeploy"
    offenders = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if "transport" not in p.parts
        and any(
            w in p.read_text()
            for w in ("import paramiko", "from fabric", "import fabric")
        )
    ]
    assert offenders == []


# ---------------------------------------------------------------- local commands


def test_local_commands_fail_in_one_line_naming_the_command() -> None:
    from hydradeploy.transport import local

    with pytest.raises(
        local.LocalError, match=r"^no-such-binary-x not found on this machine$"
    ):
        local.run(["no-such-binary-x"], timeout=5)
    with pytest.raises(local.LocalError, match=r"^sleep 5 took longer than 0.2 s$"):
        local.run(["sleep", "5"], timeout=0.2)
    with pytest.raises(local.LocalError, match=r"^sh -c .* failed: error: broken$"):
        local.run(["sh", "-c", "echo noise >&2; echo 'error: broken' >&2; exit 3"], timeout=5, check=True)  # fmt: skip
    assert local.run(["cat"], input="x", timeout=5).stdout == "x"


def test_commands_run_only_through_the_runner() -> None:
    """subprocess stays in transport/local.py (and the lab's plumbing and the converter's
    nix eval, owned elsewhere)."""
    src = REPO / "tools" / "hydradeploy" / "src" / "hydradeploy"
    allowed = ("lab", "convert")
    offenders = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if p.relative_to(src).parts[0] not in allowed
        and p.name != "local.py"
        and "subprocess.run(" in p.read_text()
    ]
    assert offenders == []


def test_hostkeys_trusts_a_new_key_only_with_accept_new_and_shows_its_fingerprint(
    sshd_stub: int, tmp_path: Path
) -> None:
    from hydradeploy.secrets.hostkeys import collect_one

    (tmp_path / "kh").write_text("")
    base = {"port": sshd_stub, "known_hosts": tmp_path / "kh", "key": tmp_path / "none"}
    unknown = collect_one(_host(**base), accept_new=False, timeout=5)
    assert unknown.status == "unknown" and unknown.key is None
    assert KEY.fingerprint in unknown.detail and "--accept-new" in unknown.detail
    new = collect_one(_host(**base), accept_new=True, timeout=5)
    assert new.status == "new" and new.key is not None
    assert new.key.blob == KEY.asbytes()
    known = collect_one(_host(**base, host_key=KEY_LINE), accept_new=False, timeout=5)
    assert known.status == "verified" and known.detail == "matches inventory host_key"
    other = _new_key()
    changed = collect_one(
        _host(**base, host_key=f"ssh-ed25519 {other.get_base64()}"),
        accept_new=True,
        timeout=5,
    )
    assert (
        changed.status == "mismatch" and changed.key is None
    )  # --accept-new never overrides
