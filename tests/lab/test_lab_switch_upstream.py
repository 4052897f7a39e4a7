"""The lab's switch-to-configuration against upstream's exit codes, lock and messages
(nixpkgs pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs @00401fd7e581),
without root or a lab: systemd and the host's files are stood in for."""

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
    assert "Failed to run activate script" in capsys.readouterr().err
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
