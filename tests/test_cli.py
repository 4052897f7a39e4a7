"""The command-line contract at the root: help, version, and how user errors look."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from cli_runner import run_cli
from hydradeploy.cli import cli as root_cli


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


# ------------------------------------------------------------------ one command line

# every command that works on inventory hosts, and how it is spelled
HOST_COMMANDS = [
    ("deploy",), ("plan",), ("status",), ("check",), ("rollback",), ("reboot",),
    ("secrets", "check"), ("secrets", "hostkeys"), ("inventory", "show"), ("nodes", "sync"),
]  # fmt: skip


def _command(path: tuple[str, ...]) -> click.Command:
    ctx = click.Context(root_cli)
    cmd: click.Command | None = root_cli
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.get_command(ctx, name)
        assert cmd is not None, path
    assert cmd is not None
    return cmd


def _leaves(cmd: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(cmd, click.Group):
        return [path]
    ctx = click.Context(cmd)
    return [
        leaf
        for name in cmd.list_commands(ctx)
        for leaf in _leaves(cmd.get_command(ctx, name), (*path, name))  # type: ignore[arg-type]
    ]


def _selection(cmd: click.Command) -> dict[str, tuple[object, ...]]:
    params = {p.name: p for p in cmd.params}
    hosts, all_, on = params["hosts"], params["all_hosts"], params["on"]
    return {
        "hosts": (hosts.nargs, hosts._custom_shell_complete),  # type: ignore[attr-defined]
        "all": (tuple(all_.opts), getattr(all_, "is_flag", None)),
        "on": (tuple(on.opts), on.multiple, on._custom_shell_complete, on.help),  # type: ignore[attr-defined]
    }


def test_every_host_command_selects_hosts_the_same_way() -> None:
    from hydradeploy.cli_options import complete_hosts, complete_selectors

    for path in HOST_COMMANDS:
        sel = _selection(_command(path))
        assert sel["hosts"] == (-1, complete_hosts), path
        assert sel["all"] == (("--all",), True), path
        assert sel["on"][:3] == (("--on",), True, complete_selectors), path
    # a command outside the lab and the converter that takes HOST… is in the list above
    lab_or_convert = {"lab", "convert"}
    for leaf in _leaves(root_cli):
        if leaf[0] in lab_or_convert:
            continue
        if any(p.name == "hosts" for p in _command(leaf).params):
            assert leaf in HOST_COMMANDS, (
                f"{' '.join(leaf)} takes hosts: add it to HOST_COMMANDS"
            )


@pytest.mark.parametrize("path", HOST_COMMANDS, ids=" ".join)
def test_every_host_command_resolves_tags_the_same_way(tmp_path: Path, path) -> None:
    """Each routes --on through the one selector: an unknown tag is exit 2, before any
    connection, naming the inventory."""
    inv = tmp_path / "inv.toml"
    inv.write_text(
        '[cluster]\nname = "t"\n'
        '[hosts.srv]\naddress = "127.0.0.1"\nrole = "server"\ncluster_init = true\n'
    )
    result = run_cli(
        *path, "--on", "@nothing,srv", "--inventory", str(inv),
        env={"HYDRA_ROOT": str(tmp_path)}, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip()
        == f"hydradeploy: error: {inv}: no host carries the tag @nothing"
    )


@pytest.mark.parametrize(
    "args",
    [["plan", "--all"], ["secrets", "check"], ["nodes", "sync"], ["prune"]],
    ids=" ".join,
)
def test_the_hint_after_a_bad_inventory_names_it_on_every_command(
    tmp_path: Path, args
) -> None:
    bad = tmp_path / "my inv.toml"
    bad.write_text(
        '[cluster]\nname = "c"\n[hosts.a]\naddress = "x"\nrole = "nope"\nfoo = 1\n'
    )
    result = run_cli("--inventory", str(bad), *args, env={"HYDRA_ROOT": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert f"run `hydradeploy --inventory '{bad}' inventory check`" in result.stderr


def test_output_is_table_or_json_on_every_command() -> None:
    from hydradeploy.output import OUTPUTS

    assert OUTPUTS == ("table", "json")
    seen = set()
    for leaf in _leaves(root_cli):
        for p in _command(leaf).params:
            if "--output" in getattr(p, "opts", ()):
                seen.add(leaf)
                assert isinstance(p.type, click.Choice), leaf
                assert tuple(p.type.choices) == OUTPUTS, leaf
                assert p.default == "table", leaf
    # every command whose result a program would read has the option
    readers = {("generations",), ("history",), ("prune",), ("inventory", "check"),
               ("secrets", "import"), ("secrets", "rekey"), ("lab", "status")}  # fmt: skip
    assert {*HOST_COMMANDS, *readers} <= seen


def test_a_piped_table_is_tab_separated_whole_lines(capsys) -> None:
    from hydradeploy.output import table

    long = "hydra.io/" + "x" * 300
    table("t", ("node", "labels"), [["hydra-ai", f"[red]{long}[/]\nb=c"]])
    out = capsys.readouterr().out.splitlines()
    assert out == ["node\tlabels", f"hydra-ai\t{long}; b=c"]


def test_completion_functions_offer_names_tags_and_the_last_item_of_a_list(
    repo: Path,
) -> None:
    from hydradeploy.cli_options import complete_hosts, complete_selectors

    ctx = root_cli.make_context(
        "hydradeploy", ["--inventory", str(repo / "hosts/inventory.toml"), "status"],
        resilient_parsing=True,
    )  # fmt: skip
    ctx.obj = {"inventory_path": repo / "hosts/inventory.toml"}
    words = [c.value for c in complete_hosts(ctx, None, "hydra-")]  # type: ignore[arg-type]
    assert {"hydra-ai", "hydra-compute", "hydra-amd"} <= set(words)
    assert not any(w.startswith("@") for w in words)
    tags = [c.value for c in complete_selectors(ctx, None, "@gpu,@e")]  # type: ignore[arg-type]
    assert tags == ["@gpu,@edge"]
    # a broken inventory completes nothing rather than failing the shell
    ctx.obj = {"inventory_path": repo / "no-such.toml"}
    assert complete_hosts(ctx, None, "") == []  # type: ignore[arg-type]


def test_completion_reads_the_inventory_named_after_the_command(tmp_path: Path) -> None:
    """`status --inventory X <TAB>` completes X's hosts, as the command would use X."""
    from click.shell_completion import BashComplete

    inv = tmp_path / "inv.toml"
    inv.write_text(
        '[cluster]\nname = "t"\n'
        '[hosts.only-here]\naddress = "127.0.0.1"\nrole = "server"\ncluster_init = true\n'
    )
    complete = BashComplete(root_cli, {}, "hydradeploy", "_HYDRADEPLOY_COMPLETE")
    for args in (
        ["--inventory", str(inv), "status"],
        ["status", "--inventory", str(inv)],
    ):
        assert [c.value for c in complete.get_completions(args, "")] == ["only-here"], (
            args
        )
    words = complete.get_completions(["deploy", "--inventory", str(inv), "--on"], "@s")
    assert [c.value for c in words] == ["@server"]
    words = complete.get_completions(["history", "--inventory", str(inv), "--host"], "")
    assert [c.value for c in words] == ["only-here"]


def test_history_this_inventory_matches_the_file_however_its_path_was_written(
    tmp_path: Path, repo: Path, monkeypatch
) -> None:
    from hydradeploy.deploy import service
    from hydradeploy.deploy.engine import Options
    from hydradeploy.inventory import load_inventory

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    (tmp_path / "hosts").mkdir()
    inv = tmp_path / "hosts" / "inventory.toml"
    inv.write_text((repo / "hosts" / "inventory.toml").read_text())
    other = tmp_path / "other.toml"
    other.write_text(inv.read_text())
    monkeypatch.chdir(tmp_path)
    # a run made with a relative --inventory records the absolute file (no hosts: no SSH)
    for path in (Path("hosts/inventory.toml"), other):
        service.run(load_inventory(path), "deploy", [], Options(), quiet=True)
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "HYDRA_ROOT": str(tmp_path)}
    for args in (
        [],
        ["--inventory", "hosts/inventory.toml"],
        ["--inventory", str(inv)],
    ):
        res = run_cli(
            *args,
            "history",
            "--this-inventory",
            "--output",
            "json",
            env=env,
            cwd=tmp_path,
        )
        assert res.returncode == 0, res.stderr
        assert [e["inventory"] for e in json.loads(res.stdout)] == [str(inv)], args


def test_every_parameter_naming_an_inventory_host_completes_host_names() -> None:
    from hydradeploy.cli_options import complete_hosts, complete_selectors

    host_params = {"host", "hosts", "host_filter", "server", "on"}
    found = 0
    for leaf in _leaves(root_cli):
        if leaf[0] in (
            "lab",
            "convert",
        ):  # lab hosts; the converter's --host is free text
            continue
        for p in _command(leaf).params:
            if p.name in host_params:
                found += 1
                complete = p._custom_shell_complete  # type: ignore[attr-defined]
                assert complete in (complete_hosts, complete_selectors), (leaf, p.name)
    assert found > len(HOST_COMMANDS) * 2


# ------------------------------------------------------------------ in the lab


@pytest.mark.lab
@pytest.mark.slow
def test_lab_exec_timeout_and_nodes_sync_selection_in_the_lab(lab_factory) -> None:
    from hydradeploy.lab import HostSpec

    lab = lab_factory([HostSpec("srv", "server"), HostSpec("w1", "agent")])
    res = run_cli(
        "lab",
        "exec",
        "--dir",
        str(lab.dir),
        "srv",
        "--timeout",
        "1",
        "--",
        "sleep",
        "5",
    )
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip() == (
        "hydradeploy: lab exec: srv: sleep did not finish within 1s"
        " (it may still run inside the host)"
    )
    inv = str(lab.inventory_path)
    for args, nodes in (
        (["--on", "@agent"], ["w1"]),
        (["srv", "--on", "w1"], ["srv", "w1"]),
        (["--all"], ["srv", "w1"]),
    ):
        res = run_cli(
            "nodes",
            "sync",
            *args,
            "--dry-run",
            "--output",
            "json",
            "--inventory",
            inv,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        assert [n["node"] for n in json.loads(res.stdout)["nodes"]] == nodes, args
