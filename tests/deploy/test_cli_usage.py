"""Bad usage of the deploy commands: one line naming what is wrong, exit 2, no traceback."""

from __future__ import annotations

import json
import shlex

import pytest


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["deploy"], "name the hosts: HOST…, --all or --on @TAG"),
        (["deploy", "nope"], "no host 'nope' in the inventory"),
        (["deploy", "--on", "@nothing"], "no host carries the tag @nothing"),
        (["deploy", "hydra-ai", "--closure", "hydra-ai"], "expected HOST=/nix/store/…"),
        (
            ["deploy", "hydra-ai", "--closure", "hydra-ai=/tmp/x"],
            "/tmp/x is not a Nix store path",
        ),
        (
            [
                "deploy",
                "hydra-ai",
                "--closure",
                "hydra-amd=/nix/store/" + "a" * 32 + "-x",
            ],
            "host hydra-amd is not among the hosts being deployed",
        ),
        (
            [
                "deploy",
                "hydra-ai",
                "--closure",
                "hydra-ai=/nix/store/" + "a" * 32 + "-x",
            ],
            "is not in the local Nix store",
        ),
        (["plan"], "name the hosts"),
        (["rollback", "ghost"], "no host 'ghost'"),
        (["rollback"], "name the hosts"),
        (
            ["rollback", "--on", "@gpu", "--to", "3"],
            "--to 3: names one generation of one host",
        ),
        (["generations", "ghost"], "no host 'ghost'"),
        (["status", "ghost"], "no host 'ghost'"),
    ],
)
def test_usage_errors(cli, args, says):
    res = cli(*args)
    assert res.returncode == 2, res.stderr
    assert says in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["deploy", "hydra-ai", "--stability-window", "-1"],
         "hydradeploy deploy: Invalid value for '--stability-window': -1.0 is not in the range"),
        (["history", "--last", "0"], "hydradeploy history: Invalid value for '--last'"),
        (["deploy", "--all", "--nope"], "hydradeploy deploy: No such option '--nope'"),
        (["generations"], "hydradeploy generations: Missing argument 'HOST'"),
        (["frobnicate"], "hydradeploy: No such command 'frobnicate'"),
    ],
)  # fmt: skip
def test_click_usage_errors_are_one_line_naming_command_and_option(cli, args, says):
    res = cli(*args)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("hydradeploy: error: ") and says in res.stderr, (
        res.stderr
    )
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Usage:" not in res.stderr and "Traceback" not in res.stderr


def test_bad_option_values_exit_2(cli):
    res = cli("deploy", "--all", "--max-parallel", "0")
    assert res.returncode == 2 and "--max-parallel" in res.stderr
    res = cli("deploy", "--all", "--mode", "reboot")
    assert res.returncode == 2 and "--mode" in res.stderr


def test_missing_inventory_exit_2(cli, tmp_path):
    res = cli("--inventory", str(tmp_path / "none.toml"), "status")
    assert res.returncode == 2 and "inventory file not found" in res.stderr


def test_history_reads_the_local_record(cli, tmp_path):
    env = {"XDG_STATE_HOME": str(tmp_path)}
    res = cli("history", "--output", "json", env=env)
    assert res.returncode == 0 and json.loads(res.stdout) == []
    res = cli("history", env=env)
    assert res.returncode == 0 and "no deploys recorded yet" in res.stdout
    rec = tmp_path / "hydradeploy" / "deploys.jsonl"
    rec.parent.mkdir(parents=True)
    lines = [
        {"id": "r1", "command": "deploy", "user": "u", "machine": "m", "started": "2026-01-01T00:00:00Z", "outcome": "ok",
         "hosts": [{"host": "a", "generation_before": 1, "generation_after": 2, "outcome": "deployed"}]},
        {"id": "r2", "command": "rollback", "user": "u", "machine": "m", "started": "2026-01-02T00:00:00Z", "outcome": "ok",
         "hosts": [{"host": "b", "generation_before": 3, "generation_after": 2, "outcome": "deployed"}]},
    ]  # fmt: skip
    rec.write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = cli("history", "--host", "b", "--output", "json", env=env)
    assert [e["id"] for e in json.loads(res.stdout)] == ["r2"]
    res = cli("history", env=env)
    assert (
        res.returncode == 0
        and "a 1→2 deployed" in res.stdout
        and "rollback" in res.stdout
    )
    rec.write_text("{broken\n")
    res = cli("history", env=env)
    assert res.returncode == 2 and f"{rec}:1: not a JSON line" in res.stderr


# ------------------------------------------------------------------ the command line


def _inventory(tmp_path, ssh_extra: str = "") -> str:
    path = tmp_path / "inv.toml"
    path.write_text(
        '[cluster]\nname = "t"\n'
        '[hosts.srv]\naddress = "127.0.0.1"\nrole = "server"\ncluster_init = true\n'
        'tags = ["edge"]\n' + ssh_extra + "\n"
        '[hosts.w1]\naddress = "127.0.0.2"\nrole = "agent"\n'
        '[[hosts.w1.gpus]]\nvendor = "nvidia"\nmodel = "RTX 4090"\nvram_gb = 24\ncount = 1\n'
    )
    return str(path)


def test_on_is_repeatable_and_takes_comma_lists(cli, tmp_path):
    inv = _inventory(tmp_path)
    res = cli(
        "--inventory", inv, "inventory", "show", "--on", "@edge,w1", "--output", "json"
    )
    assert res.returncode == 0, res.stderr
    assert sorted(json.loads(res.stdout)["hosts"]) == ["srv", "w1"]
    res = cli("--inventory", inv, "inventory", "show", "--on", "@edge", "--on", "@gpu", "--output", "json")  # fmt: skip
    assert sorted(json.loads(res.stdout)["hosts"]) == [
        "srv",
        "w1",
    ]  # the second --on adds
    res = cli(
        "--inventory", inv, "inventory", "show", "--on", "@nvidia", "--output", "json"
    )
    assert sorted(json.loads(res.stdout)["hosts"]) == ["w1"]


def test_global_options_go_before_or_after_the_command(cli, tmp_path):
    inv = _inventory(tmp_path)
    before = cli("--inventory", inv, "inventory", "show", "--output", "json")
    after = cli("inventory", "show", "--output", "json", "--inventory", inv, "-v")
    assert before.returncode == after.returncode == 0, after.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout)


def test_inventory_show_lists_tags_and_pipes_as_tsv(cli, tmp_path):
    res = cli("--inventory", _inventory(tmp_path), "inventory", "show")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split("\t")[:5] == ["node", "host", "role", "address", "tags"]
    srv = next(ln.split("\t") for ln in lines if ln.startswith("srv\t"))
    assert "@edge" in srv[4] and "@server" in srv[4]


@pytest.mark.parametrize(
    ("jump", "says"),
    [
        (
            "ops@bastion:notaport",
            "srv: ssh.jump 'ops@bastion:notaport': port 'notaport' is not a number",
        ),
        (
            "ops@bastion:99999",
            "srv: ssh.jump 'ops@bastion:99999': port 99999 is out of range",
        ),
    ],
)
def test_a_bad_jump_host_is_exit_2_before_any_connection(cli, tmp_path, jump, says):
    inv = _inventory(tmp_path, f'ssh = {{ jump = "{jump}" }}')
    for cmd in (["deploy", "srv"], ["status"], ["plan", "--all"]):
        res = cli("--inventory", inv, *cmd)
        assert res.returncode == 2, (cmd, res.stderr)
        assert says in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_status_shows_unknown_not_false_for_an_unreachable_host(cli, tmp_path):
    inv = _inventory(tmp_path, "ssh = { port = 1 }")
    res = cli("--inventory", inv, "status", "srv", "--output", "json", timeout=60)
    row = json.loads(res.stdout)[0]
    assert row["reachable"] is False and "srv: cannot connect to" in row["error"]
    for key in ("generation", "k3s_active", "node_ready", "gpus_allocatable"):
        assert row[key] is None, key
    assert "Traceback" not in res.stderr and "Exception" not in res.stderr
    res = cli("--inventory", inv, "status", "srv", timeout=60)
    cells = next(ln for ln in res.stdout.splitlines() if ln.startswith("srv\t")).split(
        "\t"
    )
    assert cells[2:6] == ["?", "?", "?", "?"] and "inactive" not in res.stdout


def test_the_hint_after_a_bad_inventory_names_that_inventory(cli, tmp_path):
    bad = tmp_path / "bad inv.toml"
    bad.write_text(
        '[cluster]\nname = "c"\n[hosts.a]\naddress = "x"\nrole = "nope"\nfoo = 1\n'
    )
    res = cli("--inventory", str(bad), "plan", "--all")
    assert res.returncode == 2
    assert f"hydradeploy --inventory '{bad}' inventory check" in res.stderr


def test_history_is_readable_and_filters_by_cluster(cli, tmp_path):
    env = {"XDG_STATE_HOME": str(tmp_path)}
    rec = tmp_path / "hydradeploy" / "deploys.jsonl"
    rec.parent.mkdir(parents=True)
    lines = [
        {"id": "r1", "cluster": "lab", "inventory": "/x/lab.toml", "command": "deploy", "outcome": "failed",
         "hosts": [{"host": "a", "generation_before": None, "generation_after": None, "outcome": "unreachable"}]},
        {"id": "r2", "cluster": "hydra", "inventory": "/y/inv.toml", "command": "deploy", "outcome": "ok",
         "hosts": [{"host": "b", "generation_before": 1, "generation_after": 2, "outcome": "deployed"}]},
    ]  # fmt: skip
    rec.write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = cli("history", "--cluster", "lab", "--output", "json", env=env)
    assert [e["id"] for e in json.loads(res.stdout)] == ["r1"]
    res = cli("history", env=env)
    assert "None" not in res.stdout and "a ?→? unreachable" in res.stdout


def _commands(cli) -> list[list[str]]:
    out = []
    top = cli("--help").stdout.split("Commands:", 1)[1]
    for name in [ln.split()[0] for ln in top.splitlines() if ln.strip()]:
        sub = cli(name, "--help").stdout
        if "Commands:" in sub:
            for ln in sub.split("Commands:", 1)[1].splitlines():
                if ln.strip():
                    out.append([name, ln.split()[0]])
        else:
            out.append([name])
    return out


def test_completion_offers_host_names_and_tags(tmp_path):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "_HYDRADEPLOY_COMPLETE": "bash_complete",
        "COMP_WORDS": f"hydradeploy --inventory {_inventory(tmp_path)} deploy --on @",
        "COMP_CWORD": "5",
    }
    res = subprocess.run(
        [sys.executable, "-m", "hydradeploy"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    words = [ln.split(",", 1)[1] for ln in res.stdout.splitlines() if "," in ln]
    assert "@edge" in words and "@gpu" in words and "@server" in words
    env["COMP_WORDS"] = f"hydradeploy --inventory {_inventory(tmp_path)} status "
    res = subprocess.run(
        [sys.executable, "-m", "hydradeploy"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    words = [ln.split(",", 1)[1] for ln in res.stdout.splitlines() if "," in ln]
    assert {"srv", "w1"} <= set(words)


def test_plan_prints_build_commands_whole_even_when_they_are_long(cli, tmp_path):
    inv = _inventory(tmp_path, "ssh = { port = 1 }")
    flake = "/" + "very-long-directory-name/" * 8 + "flake"
    res = cli("--inventory", inv, "plan", "--all", "--flake", flake, timeout=60)
    assert res.returncode == 1  # the hosts could not be looked at
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("srv: would run"))
    argv = shlex.split(line.removeprefix("srv: would run "))
    assert argv[-1] == f"{flake}#nixosConfigurations.srv.config.system.build.toplevel"
