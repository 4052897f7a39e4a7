"""`hydradeploy inventory check|show`: the inventory's problems, or what it declares."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from hydradeploy.errors import OperationFailed
from hydradeploy.inventory import check_file, load_inventory, where


def _path(ctx: click.Context) -> Path:
    path: Path = ctx.obj["inventory_path"]
    return path


@click.group()
def inventory() -> None:
    """Validate and show the inventory (hosts/inventory.toml)."""


@inventory.command("check")
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def check(ctx: click.Context, output: str) -> None:
    """List every problem of the inventory; exit 1 when there is one."""
    path = _path(ctx)
    _, issues = check_file(path)
    if output == "json":
        click.echo(
            json.dumps(
                [
                    {"code": i.code, "path": i.path, "line": i.line, "message": i.message}
                    for i in issues
                ],
                indent=2,
            )
        )
    else:
        for issue in issues:
            click.echo(f"{where(path, issue)}: {issue} [{issue.code}]")
        if not issues:
            click.echo(f"{path}: ok")
    if issues:
        raise OperationFailed()


@inventory.command("show")
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def show(ctx: click.Context, output: str) -> None:
    """The hosts and the k3s nodes the inventory declares."""
    path = _path(ctx)
    inv = load_inventory(path)
    nodes = inv.expected_nodes()
    if output == "json":
        data: dict[str, Any] = {
            "cluster": {
                "name": inv.cluster.name,
                "api_endpoint": inv.cluster.api_endpoint,
                "embedded_etcd": inv.embedded_etcd,
                "cluster_init": inv.cluster_init.name,
            },
            "hosts": {
                h.name: {"address": h.address, "role": h.role, "tags": list(h.all_tags())}
                for h in inv.hosts.values()
            },
            "nodes": nodes,
        }
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{inv.cluster.name} ({path})")
    for col in ("node", "host", "role", "address", "GPUs", "labels", "taints"):
        table.add_column(col)
    for name, node in nodes.items():
        gpus = ", ".join(f"{k}={v}" for k, v in node["gpus"].items()) or "-"
        labels = "\n".join(f"{k}={v}" for k, v in sorted(node["labels"].items())) or "-"
        table.add_row(
            name,
            node["host"],
            node["role"],
            node["address"],
            gpus,
            labels,
            "\n".join(node["taints"]) or "-",
        )
    Console().print(table)
