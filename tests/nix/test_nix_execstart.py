"""k3s.service's ExecStart= for every node of both example inventories, built exactly as
nixpkgs' rancher module builds it (upstream-execstart.nix) from the values our modules
give `services.k3s.*`, then split the way systemd splits it (systemd_cmdline.py): one
argument per flag, and the etcd snapshot schedule intact (issue 13, defect 2)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from nixeval import (
    EXAMPLE,
    HA_EXAMPLE,
    LIB,
    load_expr,
    nix_eval,
    nix_eval_error,
    nix_str,
    requires_nix,
)
from systemd_cmdline import CommandLineError, split_exec_start

pytestmark = requires_nix
UPSTREAM = Path(__file__).parent / "upstream-execstart.nix"
TOKEN = "/run/agenix/k3s-token"
K3S = "/nix/store/00000000000000000000000000000000-k3s/bin/k3s"


def exec_starts(inventory: Path) -> dict[str, dict[str, Any]]:
    """Per node: the k3s-flags.nix output and the upstream ExecStart= built from it."""
    expr = f"""
      let
        inv = {load_expr(inventory)};
        node = name:
          let k = import {nix_str(LIB / "k3s-flags.nix")} {{ inventory = inv; host = name; tokenFile = "{TOKEN}"; }};
          in {{
            settings = k;
            execStart = import {nix_str(UPSTREAM)} {{
              cfg = {{
                inherit (k) role serverAddr nodeName nodeIP nodeLabel nodeTaint disable extraFlags;
                tokenFile = "{TOKEN}";
              }};
              extraBinFlags = if k.clusterInit then [ "--cluster-init" ] else [ ];
            }};
          }};
      in builtins.mapAttrs (name: _: node name) inv.nodes
    """
    result: dict[str, dict[str, Any]] = nix_eval(expr)
    return result


@pytest.mark.parametrize("inventory", [EXAMPLE, HA_EXAMPLE], ids=lambda p: p.name)
def test_every_flag_is_one_argument(inventory: Path) -> None:
    raw = tomllib.loads(inventory.read_text())
    cron = raw["cluster"].get("etcd_snapshot_schedule", "0 */6 * * *")
    assert " " in cron, "the example must exercise a value with spaces"
    nodes = exec_starts(inventory)
    assert nodes
    for name, node in nodes.items():
        s = node["settings"]
        argv = split_exec_start(node["execStart"])
        assert argv[:2] == [K3S, s["role"]], name
        # the arguments k3s receives are exactly the ones k3s-flags.nix meant
        extra = s.get("extraArgs", [])
        assert argv[len(argv) - len(extra) :] == extra, name
        for label in s["nodeLabel"]:
            assert f"--node-label={label}" in argv, (name, label)
        for taint in s["nodeTaint"]:
            assert f"--node-taint={taint}" in argv, (name, taint)
        if s["role"] == "server":
            # from the inventory file itself, not from the Nix output
            assert f"--etcd-snapshot-schedule-cron={cron}" in argv, (name, argv)
            assert sum(a.startswith("--etcd-snapshot-schedule-cron") for a in argv) == 1
        if s["serverAddr"]:
            assert argv[argv.index("--server") + 1] == s["serverAddr"]
        assert argv[argv.index("--token-file") + 1] == TOKEN


def nix_string(text: str) -> str:
    # a JSON string is a Nix string once `${` is escaped
    return json.dumps(text).replace("${", "\\${")


def quoted(arg: str) -> str:
    out: str = nix_eval(f"import {nix_str(LIB / 'systemd-arg.nix')} {nix_string(arg)}")
    return out


@pytest.mark.parametrize(
    "arg",
    [
        "--etcd-snapshot-schedule-cron=0 */6 * * *",
        "--flag=plain",
        '--x=a "quoted" \\ back slash',
        "--x=$HOME and ${PATH} and 100%",
        "--x='single'",
        ";",
    ],
)
def test_systemd_arg_round_trips(arg: str) -> None:
    assert split_exec_start(f"/bin/k3s \\\n {quoted(arg)} \\\n --next") == [
        "/bin/k3s",
        arg,
        "--next",
    ]


def test_control_characters_are_refused() -> None:
    tab = nix_string("--x=a\tb")
    err = nix_eval_error(f"import {nix_str(LIB / 'systemd-arg.nix')} {tab}")
    assert "control character" in err


def test_unquoted_value_with_spaces_splits() -> None:
    # the defect: the upstream join of an unquoted value
    assert split_exec_start("/bin/k3s \\\n --cron=0 */6 * * *") == [
        "/bin/k3s", "--cron=0", "*/6", "*", "*", "*",
    ]  # fmt: skip


@pytest.mark.parametrize("bad", ['"open', "a %n", "$HOME", "a ; b", '"x"y'])
def test_splitter_refuses_what_systemd_would_expand(bad: str) -> None:
    with pytest.raises(CommandLineError):
        split_exec_start(bad)
