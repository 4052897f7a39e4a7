"""`hydradeploy prune`: list, and unless --dry-run delete, the objects of auto-deploy
manifests whose file is gone from the k3s server (deploy/prune.py, docs/prune.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from hydradeploy.cli_options import complete_hosts, load
from hydradeploy.errors import OperationFailed, UserError
from hydradeploy.output import output_option

if TYPE_CHECKING:
    from hydradeploy.deploy.prune import Item
    from hydradeploy.inventory import Host, Inventory


def server_of(inv: Inventory, name: str | None) -> Host:
    """The server to prune on: NAME, else the cluster-init server."""
    host = inv.host(name) if name else inv.cluster_init
    if not host.is_server:
        raise UserError(f"prune: {host.name} is not a k3s server (it has no manifests directory)")
    return host


def run_on(
    host: Host, others: list[Host], *, include_data: bool, dry_run: bool, wait: float = 60.0
) -> list[Item]:
    """Prune on HOST over the deploy's SSH code, then remove the removed files' stale
    links on the OTHER servers too (each holds the manifests; its k3s would re-apply them)."""
    from hydradeploy.deploy import prune as pruning
    from hydradeploy.deploy.remote import Remote, RemoteError

    try:
        with Remote(host) as remote:
            items = pruning.prune(
                pruning.remote_runner(remote), include_data=include_data, dry_run=dry_run,
                wait=wait,
            )  # fmt: skip
    except (RemoteError, pruning.PruneError) as exc:
        raise OperationFailed(f"prune on {host.name}: {exc}") from None
    sources = {i.file for i in items if i.kind == "Addon"}
    for other in others if sources else []:
        try:
            with Remote(other) as remote:
                items += pruning.prune_links(
                    pruning.remote_runner(remote), other.name, sources, dry_run
                )
        except (RemoteError, pruning.PruneError) as exc:
            # shown as a failed row after what was done on HOST; the exit status is 1
            items.append(pruning.Item("File", "", f"{pruning.MANIFESTS} on {other.name}", "",
                                      done=False, error=f"{other.name}: {exc}"))  # fmt: skip
    return items


def show(items: list[Item], output: str, dry_run: bool) -> None:
    from hydradeploy.deploy.prune import summary
    from hydradeploy.output import emit_json, table

    if output == "json":
        emit_json([i.as_json() for i in items])
        return
    if not items:
        click.echo("nothing to prune: every Addon's manifest file is still deployed")
        return
    rows = []
    for i in items:
        action = i.action if i.done is None else ("deleted" if i.done else i.action)
        if i.action == "delete" and i.done is False:
            action = "[red]failed[/]"
        rows.append([i.kind, i.namespace, i.name, i.file, action, i.error or i.reason])
    table("prune plan (dry run)" if dry_run else "prune result",
          ("kind", "namespace", "name", "file", "action", "note"), rows)  # fmt: skip
    if not dry_run:
        click.echo(summary(items), err=True)


@click.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option(
    "--include-data", is_flag=True,
    help="Also delete PersistentVolumeClaims (StatefulSet claims included) and CRDs.",
)  # fmt: skip
@click.option(
    "--server", metavar="HOST", shell_complete=complete_hosts,
    help="Server to read (default: the cluster-init one).",
)  # fmt: skip
@click.option(
    "--wait", type=click.FloatRange(0, 3600), default=60, show_default=True,
    help="Seconds to wait for k3s to apply new manifest files before deleting anything.",
)  # fmt: skip
@output_option
@click.pass_context
def prune(
    ctx: click.Context,
    dry_run: bool,
    include_data: bool,
    server: str | None,
    wait: float,
    output: str,
) -> None:
    """Delete the objects of auto-deploy manifests removed from k8s/ (k3s never does).

    Reads k3s's own records on a server: Addons whose manifest file is gone (or only a
    stale link of an older generation), and the objects labelled as theirs. Deletes
    workloads, then Services, then ConfigMaps/Secrets, then Namespaces, then the Addon;
    PVCs and CRDs only with --include-data.

    \b
    Examples:
      hydradeploy prune --dry-run
      hydradeploy prune --server hydra-ai --output json
    """
    inv = load(ctx)
    host = server_of(inv, server)
    others = [h for h in inv.servers if h.name != host.name]
    items = run_on(host, others, include_data=include_data, dry_run=dry_run, wait=wait)
    show(items, output, dry_run)
    from hydradeploy.deploy.prune import failed

    bad: list[Any] = failed(items)
    if bad:
        raise OperationFailed(f"prune: {len(bad)} deletion(s) failed: {bad[0].kind} "
                              f"{bad[0].namespace}/{bad[0].name}: {bad[0].error}")  # fmt: skip
