"""The command-line contract at the root: help, version, and how user errors look."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import run_cli


def test_help_lists_only_commands_that_exist() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "inventory" in result.stdout
    listed = {
        line.split()[0]
        for line in result.stdout.split("Commands:", 1)[1].splitlines()
        if line.strip()
    }
    for name in listed:
        sub = run_cli(name, "--help")
        assert sub.returncode == 0, f"{name} --help failed: {sub.stderr}"


def test_unknown_command_is_usage_error() -> None:
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "frobnicate" in result.stderr


def test_missing_inventory_is_one_line_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = run_cli("--inventory", str(missing), "inventory", "show")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "inv.toml"
    bad.write_text("[cluster\nname = 'x'\n")
    result = run_cli("--inventory", str(bad), "inventory", "check")
    assert result.returncode == 2
    assert str(bad) in result.stderr and "not valid TOML" in result.stderr


def test_inventory_check_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "inv.toml"
    bad.write_text(
        '[cluster]\nname = "c"\n'
        '[hosts.a]\naddress = "10.0.0.1"\nrole = "agent"\nlabls = {}\n'
        '[hosts.b]\naddress = "10.0.0.1"\nrole = "agent"\n'
    )
    result = run_cli("--inventory", str(bad), "inventory", "check", "--output", "json")
    assert result.returncode == 1

    codes = {(i["code"], i["path"]) for i in json.loads(result.stdout)}
    assert ("unknown-key", "hosts.a.labls") in codes
    assert ("duplicate-address", "hosts.b.address") in codes
    assert ("no-cluster-init", "hosts") in codes
    assert ("agent-without-server", "hosts.a") in codes


def test_example_inventory_is_valid(repo: Path) -> None:
    result = run_cli(
        "--inventory", str(repo / "hosts/inventory.toml"), "inventory", "check"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_global_options_after_the_command_move_to_the_front() -> None:
    from hydradeploy.cli import hoist_globals

    assert hoist_globals(["status", "--on", "@gpu", "-v", "--inventory", "x.toml"]) == [
        "-v", "--inventory", "x.toml", "status", "--on", "@gpu",
    ]  # fmt: skip
    assert hoist_globals(["--inventory", "a.toml", "check", "h", "-q"]) == [
        "-q", "--inventory", "a.toml", "check", "h",
    ]  # fmt: skip
    # deploy has a --quiet of its own: it stays there (same meaning)
    assert hoist_globals(["deploy", "h", "--quiet"]) == ["deploy", "h", "--quiet"]
    # the command's own option of the same name stays (lab up --inventory SOURCE)
    assert hoist_globals(["lab", "up", "--dir", "d", "--inventory", "i.toml"]) == [
        "lab", "up", "--dir", "d", "--inventory", "i.toml",
    ]  # fmt: skip
    # never past `--`: the argv of `lab exec` is the host's
    assert hoist_globals(["lab", "exec", "--dir", "d", "h", "--", "ls", "-v"]) == [
        "lab", "exec", "--dir", "d", "h", "--", "ls", "-v",
    ]  # fmt: skip
