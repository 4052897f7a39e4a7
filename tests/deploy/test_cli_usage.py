"""Bad usage of the deploy commands: one line naming what is wrong, exit 2, no traceback."""

from __future__ import annotations

import json

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
