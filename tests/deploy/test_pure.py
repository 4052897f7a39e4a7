"""The engine's pure parts: order, Nix command lines, check evaluation, parsing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hydradeploy.deploy import activate, checks, nix, order, probe
from hydradeploy.deploy.models import Closure, Goal
from hydradeploy.inventory import Host, SSHSettings, load_inventory
from hydradeploy.transport import script
from hydradeploy.transport.ssh import command_line

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def inv():
    return load_inventory(REPO / "hosts" / "inventory.toml")


def _h(name: str, role: str = "agent", init: bool = False) -> Host:
    return Host(name=name, address="198.18.0.1", role=role, cluster_init=init)


# ------------------------------------------------------------------ order


def test_order_cluster_init_then_servers_one_by_one_then_the_agents_in_a_window():
    hosts = [
        _h("a1"),
        _h("s2", "server"),
        _h("a2"),
        _h("s1", "server", True),
        _h("a3"),
        _h("s3", "server"),
    ]
    waves = order.waves(hosts, max_parallel=2)
    assert [(w.kind, w.names) for w in waves] == [
        ("cluster-init", ["s1"]),
        ("server", ["s2"]),
        ("server", ["s3"]),
        ("agents", ["a1", "a2", "a3"]),  # one stage: a sliding window of 2 (Schedule)
    ]
    assert [w.index for w in waves] == [1, 2, 3, 4]
    assert [w.window for w in waves] == [1, 1, 1, 2]


def test_order_of_the_example_cluster(inv):
    waves = order.waves(list(inv.hosts.values()))
    assert [w.names for w in waves] == [["hydra-ai"], ["hydra-compute", "hydra-amd"]]
    assert [w.window for w in waves] == [1, order.DEFAULT_MAX_PARALLEL]


def test_order_rejects_zero_parallel():
    with pytest.raises(ValueError):
        order.waves([_h("a")], 0)


# ------------------------------------------------------------------ nix commands


def test_profile_commands():
    assert nix.set_profile("/nix/store/x") == [
        "nix-env",
        "-p",
        "/nix/var/nix/profiles/system",
        "--set",
        "/nix/store/x",
    ]
    assert nix.switch_generation(7) == [
        "nix-env",
        "-p",
        "/nix/var/nix/profiles/system",
        "--switch-generation",
        "7",
    ]
    assert nix.list_generations() == [
        "nix-env",
        "-p",
        "/nix/var/nix/profiles/system",
        "--list-generations",
    ]
    gen = Closure("/nix/store/old", "generation 3", generation=3)
    assert activate.profile_command(gen) == nix.switch_generation(3)
    assert activate.profile_command(
        Closure("/nix/store/new", "prebuilt")
    ) == nix.set_profile("/nix/store/new")
    assert activate.switch_command("/nix/store/new", "test") == [
        "/nix/store/new/bin/switch-to-configuration",
        "test",
    ]
    # nixos-rebuild: switch and boot add a generation; switch and test change the
    # running system; dry-activate changes nothing
    assert [g.value for g in Goal if g.sets_profile] == ["switch", "boot"]
    assert [g.value for g in Goal if g.changes_running_system] == ["switch", "test"]
    assert [g.value for g in Goal if g.changes_nothing] == ["dry-activate"]


def test_build_commands_are_the_ones_nixos_rebuild_would_run():
    assert nix.build_toplevel(".", "hydra-ai") == [
        "nix", "--extra-experimental-features", "nix-command flakes", "build", "--no-link",
        "--json", ".#nixosConfigurations.hydra-ai.config.system.build.toplevel",
    ]  # fmt: skip
    assert nix.flake_archive_to(".", "ssh://root@198.18.0.5") == [
        "nix", "--extra-experimental-features", "nix-command flakes", "flake", "archive",
        "--json", "--to", "ssh://root@198.18.0.5", ".",
    ]  # fmt: skip
    assert nix.remote_build_toplevel("/nix/store/abc-source", "h")[-1] == (
        "/nix/store/abc-source#nixosConfigurations.h.config.system.build.toplevel"
    )
    assert nix.query_requisites("/nix/store/a") == [
        "nix-store",
        "--query",
        "--requisites",
        "/nix/store/a",
    ]


def test_store_path_validation():
    good = "/nix/store/" + "a" * 32 + "-nixos-system-hydra-ai-25.05"
    assert nix.is_store_path(good)
    for bad in (
        "/nix/store/short-x",
        "/tmp/" + "a" * 32 + "-x",
        good + "; rm -rf /",
        good + "/bin",
    ):
        assert not nix.is_store_path(bad)


def test_store_path_names_follow_nix_check_name():
    # NixOS/nix src/libstore/path.cc `checkName` (2.8.0; 2.35.2 adds "." / ".."): at most
    # 211 characters, and "." or ".." is not a first dash-separated component.
    digest = "/nix/store/" + "0123456789abcdfghijklmnpqrsvwxyz"
    assert nix.is_store_path(f"{digest}-" + "n" * 211)
    assert nix.is_store_path(f"{digest}-.config-1")
    assert nix.is_store_path(f"{digest}-..x")
    for bad in ("n" * 212, ".", "..", ".-x", "..-x"):
        assert not nix.is_store_path(f"{digest}-{bad}"), bad
    assert not nix.is_store_path("/nix/store/" + "e" * 32 + "-x")  # no e, o, t, u


def test_parse_generations():
    # NixOS/nix 2.8.0 src/nix-env/nix-env.cc opListGenerations:
    # "%|4|   %|4|-%|02|-%|02| %|02|:%|02|:%|02|   %||"
    text = "   1   2026-11-20 10:00:01   \n   2   2026-11-21 05:01:19   (current)\n"
    gens = nix.parse_generations(text)
    assert [(g.number, g.date, g.current) for g in gens] == [
        (1, "2026-11-20 10:00:01", False),
        (2, "2026-11-21 05:01:19", True),
    ]
    assert gens[1].as_json() == {
        "generation": 2,
        "date": "2026-11-21 05:01:19",
        "current": True,
    }


def test_closure_changes_group_and_render_as_nix_store_diff_closures():
    """Expected lines worked out by hand from Nix 2.8.0 src/nix/diff-closures.cc
    (output name stripped, DrvName split, `removed → added`, ∅ and ε)."""
    h, g = "0" * 32, "1" * 32
    old = [
        f"/nix/store/{h}-openssl-3.0.13",
        f"/nix/store/{h}-openssl-3.0.13-bin",  # an output: same package and version
        f"/nix/store/{h}-k3s-1.33.1",
        f"/nix/store/{h}-gone-1.0",
        f"/nix/store/{h}-etc",
        f"/nix/store/{h}-nixos-system-hydra-ai-26.05.20261201.74cc63f",
        f"/nix/store/{h}-python3.12-rich-13.9.4",  # the dash before 13 splits, not "3.12"
    ]
    new = [
        f"/nix/store/{h}-openssl-3.0.13",
        f"/nix/store/{h}-openssl-3.0.13-bin",
        f"/nix/store/{h}-k3s-1.34.2",
        f"/nix/store/{h}-added-2.1",
        f"/nix/store/{g}-etc",
        f"/nix/store/{h}-nixos-system-hydra-ai-26.05.20261202.74cc63f",
        f"/nix/store/{h}-python3.12-rich-13.9.4",
        f"/nix/store/{h}-unit-script",  # "-script" reads as an output: name "unit", ε
    ]
    assert nix.closure_changes(old, new) == [
        "added: ∅ → 2.1",
        "etc: ε (rebuilt)",
        "gone: 1.0 → ∅",
        "k3s: 1.33.1 → 1.34.2",
        "nixos-system-hydra-ai: 26.05.20261201.74cc63f → 26.05.20261202.74cc63f",
        "unit: ∅ → ε",
    ]
    assert nix.closure_changes(old, old) == []


# ------------------------------------------------------------------ remote command lines


def test_remote_commands_are_quoted_and_sudo_only_for_non_root():
    argv = script('echo "$1"', "it's; rm -rf /")
    line = command_line(_h("a"), argv)
    assert line == "sh -c 'echo \"$1\"' hydradeploy 'it'\"'\"'s; rm -rf /'"
    ops = Host("b", "198.18.0.2", "agent", ssh=SSHSettings(user="ops", sudo=True))
    assert (
        command_line(ops, ["nix-env", "--list-generations"])
        == "sudo -n -- nix-env --list-generations"
    )
    root_sudo = Host(
        "c", "198.18.0.3", "agent", ssh=SSHSettings(user="root", sudo=True)
    )
    assert command_line(root_sudo, ["true"]) == "true"


# ------------------------------------------------------------------ probe


def test_probe_parse():
    st = probe.parse(
        "kind=nixos\ncurrent=/nix/store/a-sys\ncurrent_time=100\nprofile_link=system-4-link\n"
        "profile_path=/nix/store/a-sys\nstore_free_kb=2048000\nk3s=active\nsystem=running\nnow=3700\n"
    )
    assert (
        st.kind,
        st.generation,
        st.store_free_kb,
        st.closure_age_s,
        st.consistent,
    ) == ("nixos", 4, 2048000, 3600, True)
    assert probe.human_age(st.closure_age_s) == "1h"
    other = probe.parse("kind=other\ncurrent=\nprofile_link=\n")
    assert not other.is_nixos_like and other.generation is None and not other.consistent


# ------------------------------------------------------------------ checks on node JSON


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def node(
    name,
    labels=None,
    taints=(),
    gpus=None,
    ready="True",
    beat=None,
    version="v1.34.0+k3s1",
):
    beat = time.time() if beat is None else beat
    return {
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
        },
        "spec": {"taints": list(taints)},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "KubeletReady",
                    "lastHeartbeatTime": _iso(beat),
                }
            ],
            "allocatable": {"cpu": "8", **(gpus or {})},
            "nodeInfo": {"kubeletVersion": version},
        },
    }


def failing(results):
    return {r.name: r.detail for r in results if not r.ok}


EXPECTED = {
    "labels": {"hydra.io/gpu-class": "generation", "hydra.io/gpu-count": "2"},
    "taints": ["gpu=true:NoSchedule"],
    "gpus": {"nvidia.com/gpu": 2},
}


def good_node(**kw):
    args = {
        "labels": EXPECTED["labels"],
        "taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}],
        "gpus": {"nvidia.com/gpu": "2"},
    }
    args.update(kw)
    return node("w1", **args)


def test_node_checks_pass_on_a_good_node():
    res = checks.node_checks(
        "w1", EXPECTED, {"w1": good_node()}, reference_version="v1.34.0+k3s1"
    )
    assert [r.name for r in res] == [
        "node-exists",
        "node-ready",
        "labels",
        "taints",
        "gpus",
        "kubelet-version",
    ]
    assert failing(res) == {}


def test_node_checks_name_each_failure():
    assert failing(checks.node_checks("w1", EXPECTED, {}, reference_version=None)) == {
        "node-exists": "no node 'w1' registered with the cluster"
    }
    bad = good_node(
        labels={"hydra.io/gpu-class": "wrong"},
        taints=[
            {"key": "other", "effect": "NoExecute"},
            {"key": "gpu", "value": "false", "effect": "NoExecute"},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        ],
        gpus={},
        ready="Unknown",
        version="v1.33.1+k3s1",
    )
    bad["metadata"]["annotations"] = {"hydra.io/managed-taints": "other:NoExecute"}
    got = failing(
        checks.node_checks(
            "w1", EXPECTED, {"w1": bad}, reference_version="v1.34.0+k3s1"
        )
    )
    assert got == {
        "node-ready": "node w1 Ready=Unknown (KubeletReady)",
        "labels": "missing hydra.io/gpu-count=2; wrong hydra.io/gpu-class=wrong (inventory: generation)",
        "taints": "missing gpu=true:NoSchedule; unexpected gpu=false:NoExecute, other:NoExecute",
        "gpus": "nvidia.com/gpu allocatable absent, inventory 2",
        "kubelet-version": "kubelet v1.33.1+k3s1, servers run v1.34.0+k3s1",
    }


def test_an_operators_taint_does_not_fail_the_taints_check():
    """`nodes sync` never removes a taint it does not manage, so a deploy must not roll
    back over one (`kubectl taint node w1 maintenance=soon:NoSchedule`)."""
    operator = {"key": "maintenance", "value": "soon", "effect": "NoSchedule"}
    node = good_node(taints=[*good_node()["spec"]["taints"], operator])
    res = {
        r.name: r
        for r in checks.node_checks(
            "w1", EXPECTED, {"w1": node}, reference_version=None
        )
    }
    assert res["taints"].ok
    assert (
        res["taints"].detail
        == "not managed by hydradeploy, left alone: maintenance=soon:NoSchedule"
    )
    # once hydradeploy manages that key (an inventory taint since removed), it must go
    node["metadata"]["annotations"] = {
        "hydra.io/managed-taints": "maintenance:NoSchedule"
    }
    assert failing(
        checks.node_checks("w1", EXPECTED, {"w1": node}, reference_version=None)
    ) == {"taints": "unexpected maintenance=soon:NoSchedule"}
    # the cloud provider's uninitialized taint is never an operator's
    stuck = good_node(
        taints=[*good_node()["spec"]["taints"],
                {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}]
    )  # fmt: skip
    assert (
        "unexpected node.cloudprovider"
        in failing(
            checks.node_checks("w1", EXPECTED, {"w1": stuck}, reference_version=None)
        )["taints"]
    )


def test_a_stale_registration_is_not_ready_after_activation():
    now = int(time.time())
    stale = good_node(beat=now - 3)
    res = checks.node_checks(
        "w1", EXPECTED, {"w1": stale}, reference_version=None, fresh_since=now
    )
    assert "has not reported since the activation" in failing(res)["node-ready"]
    same_second = good_node(beat=now)
    assert "node-ready" in failing(
        checks.node_checks(
            "w1", EXPECTED, {"w1": same_second}, reference_version=None, fresh_since=now
        )
    )
    fresh = good_node(beat=now + 1)
    assert (
        failing(
            checks.node_checks(
                "w1", EXPECTED, {"w1": fresh}, reference_version=None, fresh_since=now
            )
        )
        == {}
    )


def test_evaluate_server_etcd_and_microvms(inv):
    expected = inv.expected_nodes()
    ai, amd = inv.host("hydra-ai"), inv.host("hydra-amd")
    nodes = {}
    for name, exp in expected.items():
        labels = dict(exp["labels"])
        if exp["role"] == "server":
            labels["node-role.kubernetes.io/etcd"] = "true"
        gpus = {k: str(v) for k, v in exp["gpus"].items()}
        nodes[name] = node(name, labels=labels, gpus=gpus)
    facts = checks.Facts(system="running", k3s="active", readyz="ok", nodes=nodes)
    res = checks.evaluate(ai, inv, facts)
    assert failing(res) == {}
    assert {"readyz", "etcd-members"} <= {r.name for r in res}
    res = checks.evaluate(
        amd, inv, checks.Facts(system="running", k3s="active", nodes=nodes)
    )
    assert {"microvm:hydra-amd-vm1:node-ready", "microvm:hydra-amd-vm2:labels"} <= {
        r.name for r in res
    }
    assert failing(res) == {}
    del nodes["hydra-amd-vm2"]
    nodes["hydra-ai"]["metadata"]["labels"].pop("node-role.kubernetes.io/etcd")
    assert failing(
        checks.evaluate(
            amd, inv, checks.Facts(system="running", k3s="active", nodes=nodes)
        )
    ) == {
        "microvm:hydra-amd-vm2:node-exists": "no node 'hydra-amd-vm2' registered with the cluster"
    }
    got = failing(
        checks.evaluate(
            ai,
            inv,
            checks.Facts(system="starting", k3s="failed", readyz="", nodes=nodes),
        )
    )
    assert got == {
        "system": "system is starting",
        "k3s-active": "k3s is failed",
        "readyz": "/readyz said 'nothing'",
        "etcd-members": "0 of 0 etcd members Ready, inventory has 1 servers",
    }


def test_degraded_system_passes_but_says_which_units_failed(inv):
    facts = checks.parse_host_facts(
        "system=degraded\nk3s=active\nfailed=foo.service bar.service \n"
    )
    res = {r.name: r for r in checks.evaluate(inv.host("hydra-compute"), inv, facts)}
    assert (
        res["system"].ok
        and res["system"].detail
        == "system is degraded (failed units: foo.service bar.service)"
    )
    assert not res["node-exists"].ok  # no server answered: named, not silently passed


def test_units_failed_since_the_deploy_fail_the_system_check(inv):
    facts = checks.parse_host_facts(
        "system=degraded\nk3s=active\nfailed=old.service new.service \n"
    )
    host = inv.host("hydra-compute")
    res = {
        r.name: r
        for r in checks.evaluate(
            host, inv, facts, failed_before=frozenset({"old.service"})
        )
    }
    assert not res["system"].ok
    assert (
        res["system"].detail
        == "system is degraded (failed since the deploy: new.service)"
    )
    # failures that were there before the deploy alone do not fail it
    res = {r.name: r for r in checks.evaluate(
        host, inv, facts, failed_before=frozenset({"old.service", "new.service"}))}  # fmt: skip
    assert res["system"].ok


def test_preflight_records_the_units_failed_before():
    st = probe.parse("kind=nixos\nfailed=a.service b.service \n")
    assert st.failed_units == frozenset({"a.service", "b.service"})
    assert probe.parse("kind=nixos\nfailed=\n").failed_units == frozenset()


def test_built_path_from_nix_build_json():
    out = "/nix/store/" + "b" * 32 + "-nixos-system-hydra-ai-25.05"
    assert (
        nix.built_path(
            f'[{{"drvPath":"/nix/store/x.drv","outputs":{{"out":"{out}"}}}}]'
        )
        == out
    )
    assert nix.built_path("[]") is None and nix.built_path("not json") is None


def test_a_failed_local_build_is_one_clear_error(tmp_path):
    """Runs the real `nix build` (no nixpkgs needed to fail): the error names the command
    and keeps Nix's own error line."""
    from hydradeploy.deploy import closure

    with pytest.raises(closure.ClosureError) as err:
        closure.build_local(str(tmp_path / "no-flake"), "hydra-ai")
    msg = str(err.value)
    assert "nixosConfigurations.hydra-ai.config.system.build.toplevel" in msg
    assert "failed: " in msg and "error:" in msg


def test_a_step_broken_by_ctrl_c_before_any_change_is_reported_as_interrupted(
    tmp_path: Path,
) -> None:
    """Ctrl-C also reaches local children (the nix copy of the copy step); that failure
    is the user's interruption, not the host's fault, and nothing on the host changed."""
    import io

    from hydradeploy.deploy.engine import Engine, HostDeploy, Options
    from hydradeploy.deploy.models import HostReport, Outcome
    from hydradeploy.deploy.progress import Progress

    inv = load_inventory(
        Path(__file__).resolve().parents[2] / "hosts" / "inventory.toml"
    )
    engine = Engine(inv, Options(), Progress(["hydra-ai"], stream=io.StringIO()), "run")

    plain = HostReport("hydra-ai")
    HostDeploy(engine, inv.host("hydra-ai"), plain, None)._fail(
        "copy", "nix copy to ssh://hydra-hydra-ai failed: exit status 1"
    )
    assert plain.outcome is Outcome.FAILED

    engine.cancel.set()
    copy = HostReport("hydra-ai")
    HostDeploy(engine, inv.host("hydra-ai"), copy, None)._fail(
        "copy", "nix copy to ssh://hydra-hydra-ai interrupted"
    )
    assert copy.outcome is Outcome.INTERRUPTED
    assert "nothing changed" in copy.message

    # After the host changed (activation, checks) an interrupted step stays a failure:
    # the watchdog or the rollback decides what the host ends on.
    checks_rep = HostReport("hydra-ai")
    HostDeploy(engine, inv.host("hydra-ai"), checks_rep, None)._fail(
        "checks", "node-ready: NotReady"
    )
    assert checks_rep.outcome is Outcome.FAILED


def test_the_changes_line_says_when_changes_were_rolled_back_and_how_many_are_left_out():
    from hydradeploy.deploy.cli import changes_line
    from hydradeploy.deploy.models import HostReport, Outcome

    changes = [f"p{i}: 1 → 2" for i in range(15)]
    kept = changes_line(HostReport("a", Outcome.DEPLOYED, changes=changes))
    assert kept.startswith("a: 15 package change(s): p0: 1 → 2; ")
    assert "p11: 1 → 2; and 3 more (--output json lists all)" in kept
    assert "p12" not in kept and "not kept" not in kept
    back = changes_line(
        HostReport("b", Outcome.ROLLED_BACK_BY_HOST, changes=changes[:2])
    )
    assert (
        back == "b: 2 package change(s) (not kept: rolled back): p0: 1 → 2; p1: 1 → 2"
    )
