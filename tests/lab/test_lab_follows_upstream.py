"""The lab against upstream, without root or a lab (systemd, the host's files and the API
stood in for): switch-to-configuration's exit codes, lock and messages (nixpkgs
pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs @00401fd7e581) and kubectl
taint's checks."""

from __future__ import annotations

import errno
import fcntl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hydradeploy.lab.guest import activate, common, k3s_deploy


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """A host whose systemctl only records; the plan starts `b.service` and `A.service`."""
    seen: dict[str, Any] = {"systemctl": [], "log": []}

    def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
        seen["systemctl"].append(args)
        return subprocess.CompletedProcess(["systemctl", *args], 0, "", "")

    monkeypatch.setattr(activate, "systemctl", systemctl)
    monkeypatch.setattr(
        activate, "plan", lambda c: ([], [], ["b.service", "A.service"], False)
    )
    monkeypatch.setattr(activate, "point_current_system", lambda c: None)
    monkeypatch.setattr(activate, "install_units", lambda c: None)
    monkeypatch.setattr(common, "set_link", lambda i, up: None)
    monkeypatch.setattr(k3s_deploy, "link_manifests", lambda c: None)
    monkeypatch.setattr(common, "log_activation", lambda *a: seen["log"].append(a))
    monkeypatch.setattr(
        activate, "LOCK", tmp_path / "nixos" / "switch-to-configuration.lock"
    )
    monkeypatch.setattr(activate.os, "geteuid", lambda: 0)
    seen["settings"] = {"interface": "eth0", "fault": None}
    monkeypatch.setattr(common, "load_settings", lambda c: seen["settings"])
    return seen


def test_a_failed_activation_script_exits_2_and_the_switch_goes_on(
    host, capsys
) -> None:
    # main.rs: "Failed to run activate script" → exit_code = 2, then reload and start units.
    host["settings"]["fault"] = "activation"
    assert activate.main(Path("/nix/store/x-lab"), ["switch"]) == 2
    assert ("daemon-reload",) in host["systemctl"]
    assert ("start", "b.service") in host["systemctl"]
    out = capsys.readouterr()
    assert "Failed to run activate script" in out.err
    # nixpkgs activation-script.nix: printf "Activation script snippet '%s' failed (%s)\n"
    assert "Activation script snippet 'hydra-lab-fault' failed (1)\n" in out.out
    assert host["log"][-1][2] == "failed"


def test_unit_lists_go_to_stderr_sorted_like_upstream(host, capsys) -> None:
    # main.rs: eprintln!("starting the following units: {}") over names sorted by lowercase.
    assert activate.main(Path("/nix/store/x-lab"), ["test"]) == 0
    out = capsys.readouterr()
    assert "starting the following units: A.service, b.service" in out.err
    assert "the following units" not in out.out


def test_a_held_lock_fails_at_once(host, capsys) -> None:
    # main.rs: LockExclusiveNonblock; "Could not acquire lock", exit code errno.
    lock_path: Path = activate.LOCK
    lock_path.parent.mkdir(parents=True)
    with open(lock_path, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert activate.main(Path("/nix/store/x-lab"), ["switch"]) == errno.EWOULDBLOCK
    assert "Could not acquire lock" in capsys.readouterr().err
    assert host["systemctl"] == []


def test_check_is_an_action_and_unknown_ones_exit_1(host, capsys) -> None:
    # main.rs: Action has check (pre-switch checks only); `usage` exits 1.
    assert activate.main(Path("/nix/store/x-lab"), ["check"]) == 0
    assert activate.main(Path("/nix/store/x-lab"), ["reboot"]) == 1
    assert "[check|switch|boot|test|dry-activate]" in capsys.readouterr().err
    assert host["systemctl"] == []


# kubectl taint, as the lab's `k3s kubectl` does it (lab/guest/k3s_cli.py) against
# kubernetes staging/src/k8s.io/kubectl/pkg/cmd/taint/taint.go @040f689d2abf and
# utils.go @04791b490660.


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from hydradeploy.lab.guest import k3s_cli

    state: dict[str, Any] = {
        "spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
        "patches": [],
    }
    monkeypatch.setattr(k3s_cli, "_node_or_error", lambda name: state)
    monkeypatch.setattr(k3s_cli, "_patch", lambda name, p: state["patches"].append(p))
    return state


def test_taint_without_overwrite_refuses_an_existing_key_and_effect(node) -> None:
    # checkIfTaintsAlreadyExists compares key and effect only, not the value.
    from hydradeploy.lab.guest import k3s_cli

    with pytest.raises(k3s_cli.KubectlError, match="--overwrite is false"):
        k3s_cli.taint_nodes(k3s_cli.Args(), ["w1", "k=v:NoSchedule"])
    assert node["patches"] == []
    k3s_cli.taint_nodes(k3s_cli.Args(overwrite=True), ["w1", "k=v:NoSchedule"])
    k3s_cli.taint_nodes(k3s_cli.Args(), ["w1", "k=v:NoExecute"])  # another effect
    assert len(node["patches"]) == 2


def test_taint_refuses_to_add_and_remove_one_key_in_one_command(node) -> None:
    # TaintOptions.Validate: removal without effect, or with the added one, conflicts.
    from hydradeploy.lab.guest import k3s_cli

    for removal in ("k-", "k:NoExecute-"):
        with pytest.raises(
            k3s_cli.KubectlError, match="can not both modify and remove"
        ):
            k3s_cli.taint_nodes(
                k3s_cli.Args(overwrite=True), ["w1", "k=w:NoExecute", removal]
            )
    assert node["patches"] == []
    k3s_cli.taint_nodes(
        k3s_cli.Args(overwrite=True), ["w1", "k=w:NoExecute", "k:NoSchedule-"]
    )
    assert node["patches"][-1]["spec"]["taints"] == [
        {"key": "k", "value": "w", "effect": "NoExecute"}
    ]
