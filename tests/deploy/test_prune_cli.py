"""Bad usage of `prune` and `deploy --prune`: one line naming what is wrong, exit 2."""

from __future__ import annotations

import dataclasses

import pytest


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["prune", "--server", "ghost"], "no host 'ghost'"),
        (["prune", "--server", "hydra-compute"], "hydra-compute is not a k3s server"),
        (["prune", "--output", "yaml"], "--output"),
        (
            ["deploy", "--all", "--prune", "--mode", "boot"],
            "--prune needs --mode switch or test",
        ),
    ],
)
def test_prune_usage_errors(cli, args, says):
    res = cli(*args)
    assert res.returncode == 2, res.stderr
    assert says in res.stderr
    assert "Traceback" not in res.stderr


def test_an_unreachable_other_server_is_a_failed_row_after_the_work_done(
    monkeypatch,
) -> None:
    from cli_runner import REPO
    from hydradeploy.deploy import prune as pruning
    from hydradeploy.deploy import prune_cli, remote
    from hydradeploy.inventory import load_inventory

    class FakeRemote:
        def __init__(self, host, **kw) -> None:
            self.host = host

        def __enter__(self):
            if self.host.name == "srv2":
                raise remote.Unreachable("srv2: cannot connect")
            return self

        def __exit__(self, *exc) -> None:
            pass

    done = pruning.Item("Addon", "kube-system", "hydra-apps-x", "/m/x.yaml", done=True)
    monkeypatch.setattr(remote, "Remote", FakeRemote)
    monkeypatch.setattr(pruning, "remote_runner", lambda r: None)
    monkeypatch.setattr(pruning, "prune", lambda run, **kw: [done])
    inv = load_inventory(REPO / "hosts" / "inventory.toml")
    host = inv.cluster_init
    other = dataclasses.replace(host, name="srv2", cluster_init=False)
    items = prune_cli.run_on(host, [other], include_data=False, dry_run=False)
    assert items[0] is done
    assert items[1].done is False and "srv2: cannot connect" in items[1].error
    assert pruning.failed(items) == [items[1]]
