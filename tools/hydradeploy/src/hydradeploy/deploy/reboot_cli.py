"""`hydradeploy reboot HOST… | --all | --on @TAG`: cordon, drain, reboot, wait, check,
uncordon, host by host (deploy/reboot.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from hydradeploy.cli_options import host_selection, load, seconds_option, select
from hydradeploy.errors import OperationFailed
from hydradeploy.output import emit_json, output_option, table

if TYPE_CHECKING:
    from hydradeploy.inventory import Host, Inventory


@click.command(epilog="Examples:\n\n\b\n  hydradeploy reboot hydra-ai\n  hydradeploy reboot --on @agent --max-parallel 2\n  hydradeploy deploy --all --mode boot && hydradeploy reboot --all")  # fmt: skip
@host_selection
@click.option(
    "--max-parallel", type=click.IntRange(1, 64), default=1, show_default=True,
    help="Agents rebooted at once (never more than keeps one GPU node of each vendor up).",
)  # fmt: skip
@click.option(
    "--force", is_flag=True,
    help="Reboot even when no GPU node of a vendor would stay up.",
)  # fmt: skip
@seconds_option("--drain-timeout", 120, 3600, "Seconds kubectl drain may take (PDBs).", 1)
@seconds_option("--boot-timeout", 300, 3600, "Seconds for SSH and the boot to come back.", 1)
@seconds_option("--check-timeout", 180, 3600, "Seconds for the join checks to pass.", 1)
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@output_option
@click.pass_context
def reboot(
    ctx: click.Context,
    hosts: tuple[str, ...],
    all_hosts: bool,
    on: tuple[str, ...],
    max_parallel: int,
    force: bool,
    drain_timeout: float,
    boot_timeout: float,
    check_timeout: float,
    quiet: bool,
    output: str,
) -> None:
    """Reboot hosts one at a time without taking the cluster down.

    Per host: cordon, drain, reboot, wait for SSH and the boot to finish, run the join
    checks, uncordon. Servers one at a time; agents one at a time, or in waves of
    --max-parallel that keep one GPU node of each vendor up. The first host that fails
    stops the run; the hosts after it are not touched.
    """
    from hydradeploy.transport import target

    inv = load(ctx)
    chosen = select(inv, hosts, all_hosts, on, required=True)
    target.validate([*chosen, *inv.servers])
    quiet = quiet or bool((ctx.find_root().obj or {}).get("quiet"))
    run_and_render(inv, chosen, quiet=quiet, output=output, max_parallel=max_parallel,
                   force=force, drain_timeout=drain_timeout, boot_timeout=boot_timeout,
                   check_timeout=check_timeout)  # fmt: skip


def run_and_render(
    inv: Inventory,
    chosen: list[Host],
    *,
    quiet: bool,
    output: str,
    json_extra: dict[str, Any] | None = None,
    **options: Any,
) -> None:
    """Reboot CHOSEN (deploy/reboot.py), show the result, exit 1 on a failed host.
    `json_extra` (deploy --reboot): JSON is {**json_extra, "reboot": [...]}."""
    from hydradeploy.deploy.reboot import Options
    from hydradeploy.deploy.reboot import reboot as run_reboot

    run = run_reboot(inv, chosen, Options(**options), quiet=quiet)
    results = run.results
    if output == "json":
        rows = [r.as_json() for r in results]
        emit_json(rows if json_extra is None else {**json_extra, "reboot": rows})
    else:
        rows_t = []
        for r in results:
            style = {"ok": "green", "skipped": "yellow"}.get(r.outcome, "red")
            gen = f"{'?' if r.generation_before is None else r.generation_before} → " + (
                "?" if r.generation_after is None else str(r.generation_after)
            )
            rows_t.append([r.host, r.role, f"[{style}]{r.outcome}[/]", gen, r.step,
                           f"{r.seconds:.1f}s", r.message])  # fmt: skip
        table("reboot result", ("host", "role", "outcome", "generation", "step", "time",
                                "details"), rows_t)  # fmt: skip
    if run.signum is not None:
        from hydradeploy.deploy import signals

        raise signals.exit_exception(run.signum)
    failed = [r for r in results if r.outcome == "failed"]
    if failed:
        raise OperationFailed(failed[0].message)
