"""The copy step against the lab: real sshd, real Nix stores, the lab's signed binary
cache (lab cache) and closures with incompressible payload (lab closure --payload-mib).

A host fetches from its cache what the cache has (`nix copy
--substitute-on-destination`), the deployer sends only the rest; `--no-substitute` sends
everything; the bulk copy holds the host-key policy of every other connection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydradeploy.deploy import closure
from hydradeploy.inventory import load_inventory
from hydradeploy.lab import HostSpec, payload

pytestmark = [pytest.mark.lab, pytest.mark.slow]

MIB = 1 << 20
PAYLOAD_MIB = 48
FAST = ["--confirm-timeout", "5", "--check-timeout", "20", "--stability-window", "1"]


@pytest.fixture(scope="module")
def lab(lab_factory):
    return lab_factory(
        [HostSpec("srv", "server"), HostSpec("w1", "agent"), HostSpec("w2", "agent")]
    )


@pytest.fixture(scope="module")
def state_home(tmp_path_factory):
    return tmp_path_factory.mktemp("state")


def hd(
    lab, state_home: Path, *args: str, prelude: str = ""
) -> tuple[int, dict | None, str]:
    """`hydradeploy --inventory LAB ARGS` in a new process; `prelude` runs first in it."""
    code = f"{prelude}\nfrom hydradeploy.cli import main\nmain()"
    res = subprocess.run(
        [sys.executable, "-c", code, "--inventory", str(lab.inventory_path), *args],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "XDG_STATE_HOME": str(state_home)},
    )  # fmt: skip
    assert "Traceback" not in res.stderr, res.stderr
    data = json.loads(res.stdout) if "--output" in args and res.stdout.strip() else None
    return res.returncode, data, res.stderr


def valid_on(lab, host: str, path: str) -> bool:
    return lab.run(host, ["nix-store", "--check-validity", path]).returncode == 0


def test_a_payload_in_the_cache_is_substituted_and_the_deployer_sends_little(
    lab, state_home
):
    top = lab.closure("w1", payload_mib=PAYLOAD_MIB, payload_seed="copy-cached")
    extra = payload.paths_of(top)
    lab.cache(extra)
    assert not any(valid_on(lab, "w1", p) for p in extra)

    rc, plan, err = hd(
        lab, state_home, "plan", "w1", f"--closure=w1={top}", "--output", "json"
    )
    assert rc == 0, err
    preview = plan["hosts"][0]["copy"]
    assert preview["from_caches"]["paths"] == len(extra)
    assert preview["from_caches"]["bytes"] >= PAYLOAD_MIB * MIB
    assert preview["from_deployer"]["bytes"] < 5 * MIB

    rc, data, err = hd(lab, state_home, "deploy", "w1", f"--closure=w1={top}", *FAST,
                       "--output", "json")  # fmt: skip
    assert rc == 0, err
    rep = data["hosts"][0]
    copy = rep["copy"]
    assert copy["substituted"] == len(extra) and copy["sent"] >= 1  # the toplevel
    assert copy["bytes"] < 5 * MIB
    assert copy["paths"] == copy["sent"] + copy["substituted"] + (
        copy["paths"] - copy["sent"] - copy["substituted"]
    )
    assert all(valid_on(lab, "w1", p) for p in extra)
    # the host's own record keeps it
    line = lab.run("w1", ["tail", "-n1", "/var/lib/hydradeploy/deploys.jsonl"]).stdout
    assert json.loads(line)["host"]["copy"] == copy


def test_no_substitute_sends_it_all_and_compress_works(lab, state_home):
    top = lab.closure("w2", payload_mib=PAYLOAD_MIB, payload_seed="copy-sent")
    extra = payload.paths_of(top)
    lab.cache(extra)  # in the cache, and still sent from here
    rc, plan, err = hd(lab, state_home, "plan", "w2", f"--closure=w2={top}", "--no-substitute",
                       "--output", "json")  # fmt: skip
    assert rc == 0, err
    assert plan["hosts"][0]["copy"]["from_caches"]["paths"] == 0

    rc, data, err = hd(lab, state_home, "deploy", "w2", f"--closure=w2={top}", "--no-substitute",
                       "--compress", *FAST, "--output", "json")  # fmt: skip
    assert rc == 0, err
    copy = data["hosts"][0]["copy"]
    assert copy["substituted"] == 0 and copy["sent"] >= len(extra) + 1
    assert copy["bytes"] >= PAYLOAD_MIB * MIB


def _new_key() -> str:
    """A real ed25519 public key that no lab host holds."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/k"],
                       check=True, timeout=30)  # fmt: skip
        return " ".join(Path(f"{d}/k.pub").read_text().split()[:2])


WRONG_KEY = _new_key()


def test_a_wrong_host_key_refuses_the_bulk_copy(lab, state_home):
    """The copy's OpenSSH connection checks the host key itself: with a wrong key in the
    policy, `nix copy` never talks to the host."""
    top = lab.closure("w1", payload_mib=2, payload_seed="copy-refused")
    host = load_inventory(lab.inventory_path).host("w1")
    import dataclasses

    wrong = dataclasses.replace(
        host, ssh=dataclasses.replace(host.ssh, host_key=WRONG_KEY)
    )
    with pytest.raises(closure.ClosureError) as err:
        closure.nix_copy(wrong, top, substitute=False)
    assert str(err.value) == (
        "w1: nix copy to ssh://hydra-w1 failed: host key verification failed: the host presented a key the policy does not trust (inventory host_key / known_hosts)"
    )
    assert not valid_on(lab, "w1", top)


def test_a_key_that_changes_between_connect_and_copy_fails_the_deploy_in_one_line(
    lab, state_home
):
    """A man in the middle only on the bulk connection: the deploy's own connection saw
    the right key, the copy's known_hosts (what the policy would write) has another.
    Exit 1, one line naming the host and the copy step, the host unchanged."""
    top = lab.closure("w2", payload_mib=2, payload_seed="copy-mitm")
    before = lab.run("w2", ["readlink", "-f", "/run/current-system"]).stdout.strip()
    prelude = (
        "from hydradeploy.transport import openssh\n"
        "_kh = openssh.known_hosts_text\n"
        "def _wrong(h):\n"
        "    text = _kh(h)\n"
        f"    return text if h.name != 'w2' else ''.join(l.rsplit(' ', 2)[0] + ' {WRONG_KEY}\\n' for l in text.splitlines())\n"
        "openssh.known_hosts_text = _wrong\n"
    )
    rc, data, err = hd(lab, state_home, "deploy", "w2", f"--closure=w2={top}", *FAST,
                       "--output", "json", prelude=prelude)  # fmt: skip
    assert rc == 1, err
    rep = data["hosts"][0]
    assert rep["failed_step"] == "copy" and rep["outcome"] == "failed"
    assert rep["message"] == (
        "w2: nix copy to ssh://hydra-w2 failed: host key verification failed: the host presented a key the policy does not trust (inventory host_key / known_hosts)"
    )
    assert (
        lab.run("w2", ["readlink", "-f", "/run/current-system"]).stdout.strip()
        == before
    )
    assert not valid_on(lab, "w2", top)


def test_build_on_target_archives_the_flake_through_the_same_openssh_policy(
    lab, tmp_path
):
    """`--build-on target`, step 1 (the engine's obtain_closure): the flake source goes
    to the host through the generated ssh_config. Step 2, `nix build` of a NixOS
    toplevel there, needs nixpkgs (not here; its command is asserted in test_pure)."""
    from hydradeploy.deploy import nix
    from hydradeploy.transport import openssh

    flake = tmp_path / "flake"
    flake.mkdir()
    (flake / "flake.nix").write_text('{ outputs = _: { marker = "copy-lane"; }; }\n')
    host = load_inventory(lab.inventory_path).host("w1")
    with openssh.nix_sshopts(host) as opts:
        res = subprocess.run(
            nix.flake_archive_to(str(flake), openssh.store_uri(host)),
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "NIX_SSHOPTS": opts},
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    source = json.loads(res.stdout)["path"]
    assert valid_on(lab, "w1", source)
    shown = lab.run("w1", ["cat", f"{source}/flake.nix"]).stdout
    assert "copy-lane" in shown


def test_ctrl_c_mid_copy_leaves_only_complete_paths_and_the_next_deploy_finishes_it(
    lab, state_home
):
    """SIGINT while `nix copy` sends: the host is `interrupted`, untouched (same
    generation), every path it now holds is complete (`nix-store --verify-path`:
    contents match the registered hash) and references only valid paths; a second
    deploy sends the rest."""
    import signal
    import time

    top = lab.closure("w1", payload_mib=150, payload_seed="copy-ctrl-c")
    closure_paths = subprocess.run(
        ["nix-store", "--query", "--requisites", top],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    before = lab.run("w1", ["readlink", "-f", "/run/current-system"]).stdout.strip()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path),
         "deploy", "w1", f"--closure=w1={top}", "--no-substitute", *FAST, "--output", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "XDG_STATE_HOME": str(state_home)},
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "w1: copy" in line:
            time.sleep(0.4)  # into the sending
            proc.send_signal(signal.SIGINT)
            break
    out, rest = proc.communicate(timeout=120)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    rep = json.loads(out)["hosts"][0]
    assert rep["outcome"] == "interrupted" and rep["failed_step"] == "copy", rep
    assert (
        lab.run("w1", ["readlink", "-f", "/run/current-system"]).stdout.strip()
        == before
    )
    valid = [p for p in closure_paths if valid_on(lab, "w1", p)]
    assert top not in valid  # cut short: the toplevel (sent last) never arrived
    for p in valid:
        assert (
            lab.run("w1", ["nix-store", "--verify-path", p], timeout=60).returncode == 0
        ), p
        refs = lab.run("w1", ["nix-store", "--query", "--references", p]).stdout.split()
        assert all(valid_on(lab, "w1", r) for r in refs), p

    rc, data, err = hd(lab, state_home, "deploy", "w1", f"--closure=w1={top}",
                       "--no-substitute", *FAST, "--output", "json")  # fmt: skip
    assert rc == 0, err
    copy = data["hosts"][0]["copy"]
    # what arrived before the Ctrl-C is not sent again
    assert copy["paths"] == len(closure_paths) and copy["sent"] == len(
        closure_paths
    ) - len(valid)


def test_the_bulk_copy_goes_through_the_jump_host_and_checks_its_key(lab, tmp_path):
    import dataclasses

    top = lab.closure("w2", payload_mib=2, payload_seed="copy-jump")
    host = load_inventory(lab.inventory_path).host("w2")
    jumped = dataclasses.replace(
        host, ssh=dataclasses.replace(host.ssh, jump=f"root@{lab.address('srv')}")
    )
    # the jump host's key unknown (a known_hosts without it; w2's own key still comes
    # from its inventory host_key): refused, nothing sent
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    blind = dataclasses.replace(
        jumped, ssh=dataclasses.replace(jumped.ssh, known_hosts=empty)
    )
    with pytest.raises(
        closure.ClosureError, match=r"^w2: nix copy to ssh://hydra-w2 failed: host key"
    ):
        closure.nix_copy(blind, top, substitute=False)
    assert not valid_on(lab, "w2", top)
    # through srv: the copy arrives
    sent = closure.nix_copy(jumped, top, substitute=False)
    assert top in sent and valid_on(lab, "w2", top)
