"""`hydradeploy nodes sync [HOST… | --all | --on SEL] [--dry-run] [--output table|json]`:
make the nodes' labels and taints equal to the inventory without a deploy
(deploy/node_sync.py)."""

from __future__ import annotations

import click

from hydradeploy.cli_options import host_selection, load, select
from hydradeploy.errors import OperationFailed, UserError
from hydradeploy.output import emit_json, output_option, table


@click.group()
def nodes() -> None:
    """The k3s nodes of the inventory's hosts."""


@nodes.command()
@host_selection
@click.option("--dry-run", is_flag=True, help="Show the changes, change nothing.")
@output_option
@click.pass_context
def sync(
    ctx: click.Context,
    hosts: tuple[str, ...],
    all_hosts: bool,
    on: tuple[str, ...],
    dry_run: bool,
    output: str,
) -> None:
    """Set each node's labels and taints to the inventory's, through a server's API.

    Only keys hydradeploy manages are touched (recorded on the node in the annotations
    hydra.io/managed-labels and hydra.io/managed-taints); labels and taints set by k3s,
    the kubelet, node-feature-discovery or an operator stay. Exit 1 when a node is not
    registered or a change failed. Every host (and its microVMs) when none is named.

    \b
    Examples:
      hydradeploy nodes sync --dry-run
      hydradeploy nodes sync hydra-compute --on @edge --output json
    """
    from hydradeploy.deploy import node_sync

    inv = load(ctx)
    chosen = select(inv, hosts, all_hosts, on, required=False)
    names = [n for h in chosen for n in (h.name, *(vm.name for vm in h.microvms))]
    kube, found, error = node_sync.server_nodes(inv)
    if kube is None or found is None:
        raise OperationFailed(f"nodes sync: no server answered: {error}")
    try:
        plans, absent = node_sync.plan_nodes(inv.expected_nodes(), names, found)
        errors = [] if dry_run else node_sync.apply(kube, plans)
    except UserError:
        raise
    finally:
        kube.close()
    result = {
        "dry_run": dry_run,
        "server": kube.name,
        "nodes": [p.to_json() for p in plans],
        "not_registered": absent,
        "errors": errors,
    }
    if output == "json":
        emit_json(result)
    else:
        rows = []
        for p in plans:
            if not p.changes:
                rows.append([p.node, "", "none", "", "", ""])
            for c in p.changes:
                rows.append([p.node, c.kind, c.action, c.key, c.old or "", c.new or ""])
        rows += [[name, "", "[red]not registered[/]", "", "", ""] for name in absent]
        title = "node labels and taints" + (" (dry run)" if dry_run else "")
        table(title, ("node", "kind", "change", "key", "from", "to"), rows)
        for e in errors:
            click.echo(f"error: {e}", err=True)
    if absent or errors:
        raise OperationFailed(
            "nodes sync: " + "; ".join([*(f"{n} is not registered" for n in absent), *errors])
        )
