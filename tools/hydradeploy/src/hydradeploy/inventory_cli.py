"""`hydradeploy inventory check|show`: the inventory's problems, or what it declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hydradeploy.cli_options import host_selection, inventory_path, load, select
from hydradeploy.errors import OperationFailed
from hydradeploy.inventory import check_file, where
from hydradeploy.output import emit_json, output_option, table


def _path(ctx: click.Context) -> Path:
    return inventory_path(ctx)


@click.group()
def inventory() -> None:
    """Validate and show the inventory (hosts/inventory.toml)."""


@inventory.command(
    "check", epilog="Example:\n\n\b\n  hydradeploy --inventory hosts/inventory.toml inventory check"
)
@output_option
@click.pass_context
def check(ctx: click.Context, output: str) -> None:
    """List every problem of the inventory; exit 1 when there is one."""
    path = _path(ctx)
    _, issues = check_file(path)
    if output == "json":
        emit_json(
            [{"code": i.code, "path": i.path, "line": i.line, "message": i.message} for i in issues]
        )
    else:
        for issue in issues:
            click.echo(f"{where(path, issue)}: {issue} [{issue.code}]")
        if not issues:
            click.echo(f"{path}: ok")
    if issues:
        raise OperationFailed()


@inventory.command(
    "show",
    epilog="Examples:\n\n\b\n  hydradeploy inventory show\n  hydradeploy inventory show --on @gpu --output json",
)
@host_selection
@output_option
@click.pass_context
def show(
    ctx: click.Context, hosts: tuple[str, ...], all_hosts: bool, on: tuple[str, ...], output: str
) -> None:
    """The hosts (with their tags) and the k3s nodes the inventory declares; every host
    when none is named."""
    path = _path(ctx)
    inv = load(ctx)
    chosen = {h.name for h in select(inv, hosts, all_hosts, on, required=False)}
    nodes = {n: v for n, v in inv.expected_nodes().items() if v["host"] in chosen}
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
                if h.name in chosen
            },
            "nodes": nodes,
        }
        emit_json(data)
        return
    tags = {h.name: ", ".join(f"@{t}" for t in h.all_tags()) for h in inv.hosts.values()}
    rows = []
    for name, node in nodes.items():
        rows.append([
            name, node["host"], node["role"], node["address"], tags.get(name, "-") or "-",
            ", ".join(f"{k}={v}" for k, v in node["gpus"].items()) or "-",
            "\n".join(f"{k}={v}" for k, v in sorted(node["labels"].items())) or "-",
            "\n".join(node["taints"]) or "-",
        ])  # fmt: skip
    cols = ("node", "host", "role", "address", "tags", "GPUs", "labels", "taints")
    table(f"{inv.cluster.name} ({path})", cols, rows)
