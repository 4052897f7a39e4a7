"""`hydradeploy nodes sync [HOST…] [--dry-run] [--output table|json]`: make the nodes'
labels and taints equal to the inventory without a deploy (deploy/node_sync.py)."""

from __future__ import annotations

import json

import click

from hydradeploy.errors import OperationFailed, UserError


@click.group()
def nodes() -> None:
    """The k3s nodes of the inventory's hosts."""


@nodes.command()
@click.argument("hosts", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Show the changes, change nothing.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def sync(ctx: click.Context, hosts: tuple[str, ...], dry_run: bool, output: str) -> None:
    """Set each node's labels and taints to the inventory's, through a server's API.

    Only keys hydradeploy manages are touched (recorded on the node in the annotations
    hydra.io/managed-labels and hydra.io/managed-taints); labels and taints set by k3s,
    the kubelet, node-feature-discovery or an operator stay. Exit 1 when a node is not
    registered or a change failed."""
    from hydradeploy.deploy import node_sync
    from hydradeploy.inventory import load_inventory

    inv = load_inventory(ctx.obj["inventory_path"])
    chosen = [inv.host(h) for h in hosts] if hosts else list(inv.hosts.values())
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
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="node labels and taints" + (" (dry run)" if dry_run else ""),
                      title_justify="left")  # fmt: skip
        for col in ("node", "kind", "change", "key", "from", "to"):
            table.add_column(col, overflow="fold")
        for p in plans:
            if not p.changes:
                table.add_row(p.node, "", "none", "", "", "")
            for c in p.changes:
                table.add_row(p.node, c.kind, c.action, c.key, c.old or "", c.new or "")
        for name in absent:
            table.add_row(name, "", "[red]not registered[/]", "", "", "")
        Console().print(table)
        for e in errors:
            click.echo(f"error: {e}", err=True)
    if absent or errors:
        raise OperationFailed(
            "nodes sync: " + "; ".join([*(f"{n} is not registered" for n in absent), *errors])
        )
