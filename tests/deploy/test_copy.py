"""The copy step without a lab: the exact `nix copy` command, the OpenSSH config it
reads, what its log says was sent, substituted-vs-sent accounting, the space refusal,
Ctrl-C, the plan's preview, and the `copy` object in the report and the record."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from hydradeploy.deploy import closure, nix, planning, record
from hydradeploy.deploy.models import HostReport
from hydradeploy.inventory import Host, SSHSettings
from hydradeploy.transport import Result, openssh
from transport_fake import FakeNet

A = "/nix/store/" + "a" * 32 + "-glibc-2.39"
B = "/nix/store/" + "b" * 32 + "-cuda-12.8"
C = "/nix/store/" + "c" * 32 + "-nixos-system-h1"


def _host(**ssh: object) -> Host:
    return Host("h1", "127.0.0.1", "agent", ssh=SSHSettings(**ssh))  # type: ignore[arg-type]


# ------------------------------------------------------------------ commands


def test_nix_copy_command_substitutes_on_the_destination_unless_told_not_to():
    assert nix.copy_to("ssh://hydra-h1", C, substitute=True) == [
        "nix", "--extra-experimental-features", "nix-command flakes", "copy",
        "--log-format", "internal-json", "--no-check-sigs", "--substitute-on-destination",
        "--to", "ssh://hydra-h1", C,
    ]  # fmt: skip
    assert "--substitute-on-destination" not in nix.copy_to(
        "ssh-ng://x", C, substitute=False
    )


# `nix-store --realise --dry-run` as Nix 2.8 prints it (src/libmain/shared.cc,
# printMissing), and as current Nix prints it (renderSize instead of "%.2f MiB")
DRY_RUN_28 = f"""these 2 paths will be fetched (12.50 MiB download, 40.00 MiB unpacked):
  {A}
  {B}
don't know how to build these paths:
  {C}
"""
DRY_RUN_NEW = f"""this path will be fetched (1.2 MiB download, 4.0 MiB unpacked):
  {B}
"""


def test_fetched_paths_are_the_ones_listed_under_will_be_fetched():
    assert nix.fetched_paths(DRY_RUN_28) == {A, B}
    assert nix.fetched_paths(DRY_RUN_NEW) == {B}
    assert nix.fetched_paths(f"don't know how to build these paths:\n  {C}\n") == set()


def test_the_generated_ssh_config_is_what_openssh_reads(tmp_path: Path):
    """`ssh -G` resolves the config as a connection would, without connecting."""
    if shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client here")
    cfg = tmp_path / "cfg"
    h = _host(user="ops", port=2222, key=Path("/k/id"), jump="j@bastion:23")
    cfg.write_text(openssh.config_text(h, tmp_path / "kh", compress=True))
    out = subprocess.run(
        ["ssh", "-G", "-F", str(cfg), openssh.alias(h)],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout  # fmt: skip
    seen = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert (
        seen["hostname"] == "127.0.0.1"
        and seen["port"] == "2222"
        and seen["user"] == "ops"
    )
    assert seen["stricthostkeychecking"] == "true"
    assert seen["userknownhostsfile"] == str(tmp_path / "kh")
    assert seen["batchmode"] == "yes" and seen["compression"] == "yes"
    assert seen["proxycommand"].startswith("ssh -F /dev/null -W %h:%p -p 23")


# ------------------------------------------------------------------ nix copy's log


def _ev(**kw: object) -> str:
    # NixOS/nix 2.8.0 src/libutil/logging.cc JSONLogger: "@nix " + one JSON object
    return "@nix " + json.dumps(kw) + "\n"


def test_the_log_names_each_path_sent_and_the_ssh_refusal():
    log = closure._NixCopyLog()
    for line in [
        _ev(
            action="start",
            id=1,
            level=6,
            text="querying info about missing paths",
            type=0,
        ),
        _ev(action="start", id=2, level=3, text="copying 1 paths", type=103),
        _ev(
            action="start",
            id=3,
            level=3,
            text=f"copying path '{C}'",
            type=100,
            fields=[C, "local", "ssh://hydra-h1"],
        ),
        _ev(action="stop", id=3),
    ]:
        log.feed(line)
    assert log.sent == [C] and log.to_send == 1

    refused = closure._NixCopyLog()
    refused.feed("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n")
    refused.feed("Host key verification failed.\n")
    refused.feed(
        _ev(action="msg", level=0, msg="\x1b[31;1merror:\x1b[0m cannot connect")
    )
    assert refused.failure().startswith(
        "host key verification failed: the host presented"
    )

    other = closure._NixCopyLog()
    other.feed(
        _ev(action="msg", level=0, msg="\x1b[31;1merror:\x1b[0m disk full\nmore")
    )
    assert other.failure() == "error: disk full"


# ------------------------------------------------------------------ accounting


class _Copier:
    def __init__(self, sends: list[str]) -> None:
        self.sends = sends
        self.calls: list[dict[str, object]] = []

    def __call__(self, host: Host, path: str, **kw: object) -> list[str]:
        self.calls.append({"host": host.name, "path": path, **kw})
        return self.sends


@pytest.fixture
def store(monkeypatch):
    """A closure A ← B ← C in the 'local store', with NAR sizes."""
    sizes = {A: 30 * 2**20, B: 500 * 2**20, C: 2**20}
    monkeypatch.setattr(closure, "local_requisites", lambda p: [A, B, C])
    monkeypatch.setattr(closure, "nar_sizes", lambda ps: {p: sizes[p] for p in ps})
    return sizes


def _conn(lacking: list[str], after: list[str] | None = None) -> object:
    """A host that lacks `lacking`; asked again (is the toplevel valid now?), `after`."""
    net = FakeNet()
    answers = iter(["\n".join(lacking)] + ["\n".join(after or [])] * 5)
    conn = net.connect(_host())
    orig = conn.run

    def run(argv, **kw):
        res = orig(argv, **kw)
        if "--check-validity" in argv:
            return Result(0, next(answers) + "\n", "")
        return res

    conn.run = run  # type: ignore[method-assign]
    return conn


def test_paths_the_host_lacked_and_we_did_not_send_were_substituted(store):
    conn = _conn([A, B, C], after=[])
    copier = _Copier([C])  # the host's cache had glibc and cuda
    stats = closure.copy_closure(conn, C, free_kb=10 * 2**20, copier=copier)
    assert (stats.paths, stats.sent, stats.bytes, stats.substituted) == (3, 1, 2**20, 2)
    assert (
        copier.calls[0]["substitute"] is True and copier.calls[0]["compress"] is False
    )
    assert set(stats.as_json()) == {"paths", "sent", "bytes", "substituted", "seconds"}


def test_no_substitute_sends_everything_missing(store):
    conn = _conn([B, C], after=[])
    copier = _Copier([B, C])
    stats = closure.copy_closure(
        conn, C, substitute=False, compress=True, copier=copier
    )
    assert (stats.sent, stats.bytes, stats.substituted) == (2, 501 * 2**20, 0)
    assert (
        copier.calls[0]["substitute"] is False and copier.calls[0]["compress"] is True
    )


def test_nothing_missing_copies_nothing(store):
    conn = _conn([])
    copier = _Copier([])
    stats = closure.copy_closure(conn, C, copier=copier)
    assert (stats.paths, stats.sent, stats.substituted) == (
        3,
        0,
        0,
    ) and not copier.calls


def test_a_closure_that_does_not_fit_is_refused_before_copying(store):
    conn = _conn([A, B, C])
    copier = _Copier([])
    with pytest.raises(
        closure.ClosureError, match=r"h1: the closure needs 532 MiB .* 400 MiB free"
    ):
        closure.copy_closure(conn, C, free_kb=400 * 1024, copier=copier)
    assert not copier.calls


# ------------------------------------------------------------------ the real process


FAKE_NIX = """#!/bin/sh
# stands in for nix: says what it sends, then waits for a signal
echo "$NIX_SSHOPTS" > "$FAKE_NIX_OUT/sshopts"
printf '%s\\n' "$@" > "$FAKE_NIX_OUT/argv"
cp "$(echo "$NIX_SSHOPTS" | cut -d' ' -f2)" "$FAKE_NIX_OUT/ssh_config"
echo '@nix {"action":"start","id":2,"level":3,"text":"copying 1 paths","type":103}' >&2
echo '@nix {"action":"start","id":3,"level":3,"text":"x","type":100,"fields":["PATH","local","x"]}' | sed "s|PATH|$LAST|" >&2
trap 'kill $! 2>/dev/null; echo interrupted > "$FAKE_NIX_OUT/signal"; exit 130' INT
if [ -n "$FAKE_NIX_WAIT" ]; then sleep 30 & wait; fi
[ -n "$FAKE_NIX_FAIL" ] && { echo "Host key verification failed." >&2; exit 1; }
exit 0
"""


@pytest.fixture
def fake_nix(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "nix"
    exe.write_text(FAKE_NIX)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_NIX_OUT", str(tmp_path))
    monkeypatch.setenv("LAST", C)
    (tmp_path / "kh").write_text("")
    return tmp_path


def test_nix_copy_runs_with_the_policy_config_and_reports_what_it_sent(fake_nix):
    h = _host(known_hosts=fake_nix / "kh")
    seen: list[closure.CopyProgress] = []
    sent = closure.nix_copy(h, C, substitute=True, on_progress=seen.append)
    assert sent == [C]
    argv = (fake_nix / "argv").read_text().split("\n")
    assert argv[-3:] == ["ssh://hydra-h1", C, ""]
    cfg = (fake_nix / "ssh_config").read_text()
    assert "StrictHostKeyChecking yes" in cfg and "HostName 127.0.0.1" in cfg
    assert not Path(
        (fake_nix / "sshopts").read_text().split()[1]
    ).exists()  # removed after


def test_a_refused_host_key_is_one_line_naming_the_host_store(fake_nix, monkeypatch):
    monkeypatch.setenv("FAKE_NIX_FAIL", "1")
    with pytest.raises(closure.ClosureError) as err:
        closure.nix_copy(_host(known_hosts=fake_nix / "kh"), C, substitute=True)
    assert (
        str(err.value)
        == "h1: nix copy to ssh://hydra-h1 failed: host key verification failed: the host presented a key the policy does not trust (inventory host_key / known_hosts)"
    )


def test_ctrl_c_stops_nix_copy_with_sigint_and_waits_for_it(fake_nix, monkeypatch):
    monkeypatch.setenv("FAKE_NIX_WAIT", "1")
    t0 = time.monotonic()
    with pytest.raises(
        closure.ClosureError, match="interrupted; the host keeps only complete"
    ):
        closure.nix_copy(
            _host(known_hosts=fake_nix / "kh"), C, substitute=True,
            cancelled=lambda: time.monotonic() - t0 > 0.5,
        )  # fmt: skip
    assert (
        fake_nix / "signal"
    ).read_text() == "interrupted\n"  # SIGINT, handled by "nix"


# ------------------------------------------------------------------ plan and record


def test_the_plan_splits_missing_paths_into_cache_and_deployer(store):
    net = FakeNet()
    net.reply("h1", "nix-store --realise --dry-run", stderr=DRY_RUN_28)
    conn = net.connect(_host())
    got = planning.copy_preview(conn, [A, B, C], substitute=True)
    assert got == {
        "substitute": True,
        "from_caches": {"paths": 2, "bytes": 530 * 2**20},
        "from_deployer": {"paths": 1, "bytes": 2**20},
        "caches_error": None,
    }
    assert net.lines("h1") == ["xargs -r nix-store --realise --dry-run"]
    off = planning.copy_preview(conn, [A, B, C], substitute=False)
    assert off["from_caches"] == {"paths": 0, "bytes": 0}
    assert off["from_deployer"] == {"paths": 3, "bytes": 531 * 2**20}


def test_the_copy_object_is_in_the_json_report_and_the_record():
    rep = HostReport("h1")
    rep.copy = closure.CopyStats(3, 1, 2**20, 2, 1.23456).as_json()
    want = {"paths": 3, "sent": 1, "bytes": 2**20, "substituted": 2, "seconds": 1.235}
    assert rep.as_json()["copy"] == want
    entry = record.entry("run", "deploy", "t", [rep], "ok", [])
    assert entry["hosts"][0]["copy"] == want


def test_the_plan_counts_as_sent_what_it_could_not_ask_the_caches_about(store):
    from hydradeploy.transport import RemoteTimeout

    class Slow:
        name = "h1"

        def run(self, argv, **kw):
            raise RemoteTimeout(
                "h1: nix-store --realise --dry-run: no answer within 120 s"
            )

    got = planning.copy_preview(Slow(), [A, C], substitute=True)  # type: ignore[arg-type]
    assert got["from_caches"] == {"paths": 0, "bytes": 0}
    assert got["from_deployer"] == {"paths": 2, "bytes": 31 * 2**20}
    assert (
        got["caches_error"]
        == "h1: nix-store --realise --dry-run: no answer within 120 s"
    )
