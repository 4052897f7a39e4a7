"""`hydradeploy plan|deploy|rollback|generations|status|check|history`.

Each command parses, calls one function of the deploy core, and renders the result.
Heavy modules (paramiko, rich) are imported inside the commands so `--help` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from hydradeploy.cli_options import complete_hosts, host_selection, load, seconds_option, select
from hydradeploy.deploy.models import MODES, HostReport, Outcome
from hydradeploy.errors import OperationFailed, UserError
from hydradeploy.output import emit_json, output_option, table

if TYPE_CHECKING:
    from hydradeploy.deploy.service import RunResult
    from hydradeploy.inventory import Host, Inventory


def _closures(inv: Inventory, specs: Sequence[str], hosts: Sequence[Host]) -> dict[str, str]:
    from hydradeploy.deploy.nix import is_store_path

    out: dict[str, str] = {}
    chosen = {h.name for h in hosts}
    for spec in specs:
        name, eq, path = spec.partition("=")
        if not eq or not name or not path:
            raise UserError(f"--closure {spec!r}: expected HOST=/nix/store/…")
        inv.host(name)
        if name not in chosen:
            raise UserError(
                f"--closure {spec!r}: host {name} is not among the hosts being deployed"
            )
        path = path.rstrip("/")
        if not is_store_path(path):
            raise UserError(f"--closure {spec!r}: {path} is not a Nix store path")
        if not os.path.exists(path):
            raise UserError(f"--closure {spec!r}: {path} is not in the local Nix store")
        if not os.path.exists(f"{path}/bin/switch-to-configuration"):
            raise UserError(
                f"--closure {spec!r}: {path} is not a NixOS system (no bin/switch-to-configuration)"
            )
        out[name] = path
    return out


def _default_flake() -> str:
    """The repository holding the inventory's flake ($HYDRA_ROOT or found upwards)."""
    from hydradeploy.cli import repo_root

    return str(repo_root())


def _chosen(ctx: click.Context, inv: Inventory, hosts: Sequence[str], all_hosts: bool,
            on: Sequence[str], *, required: bool) -> list[Host]:  # fmt: skip
    from hydradeploy.transport import target

    chosen = select(inv, hosts, all_hosts, on, required=required)
    # a bad port or jump host: exit 2 before connecting anywhere (the servers too: they
    # answer for the nodes)
    target.validate([*chosen, *inv.servers])
    return chosen


def _quiet(ctx: click.Context, quiet: bool) -> bool:
    return quiet or bool((ctx.find_root().obj or {}).get("quiet"))


# options deploy, plan and rollback share (one definition each)
stability_window_option = click.option(
    "--stability-window",
    type=click.FloatRange(0, 600),
    default=10,
    show_default=True,
    help="Seconds k3s must stay up, unrestarted, and the node Ready after the checks pass.",
)
closure_option = click.option(
    "--closure",
    "closure_specs",
    multiple=True,
    metavar="HOST=STOREPATH",
    help="Use this prebuilt system closure for HOST.",
)
build_on_option = click.option(
    "--build-on",
    type=click.Choice(["local", "target"]),
    default="local",
    show_default=True,
    help="Where to build closures not given with --closure.",
)
flake_option = click.option(
    "--flake", default=None, help="Flake reference to build from (default: the repository)."
)
max_parallel_option = click.option(
    "--max-parallel",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="At most N agents activated and not yet verified at once (the safety limit; "
    "servers go one at a time); the next N are connected, locked and copied to meanwhile.",
)
confirm_timeout_option = click.option(
    "--confirm-timeout",
    type=click.IntRange(1, 3600),
    default=30,
    show_default=True,
    help="Seconds the host waits for the confirmation before rolling back by itself.",
)
check_timeout_option = seconds_option(
    "--check-timeout", 120, 3600, "Seconds to wait for the join checks to pass."
)
_CHANGES_SHOWN = 12  # package changes per host in the table output; JSON has all


def changes_line(r: HostReport) -> str:
    """One line of a host's package changes for people; says when they were not kept."""
    shown = "; ".join(r.changes[:_CHANGES_SHOWN])
    more = len(r.changes) - _CHANGES_SHOWN
    back = r.outcome in (Outcome.ROLLED_BACK, Outcome.ROLLED_BACK_BY_HOST)
    return (
        f"{r.host}: {len(r.changes)} package change(s)"
        + (" (not kept: rolled back)" if back else "")
        + f": {shown}"
        + (f"; and {more} more (--output json lists all)" if more > 0 else "")
    )


quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
no_substitute_option = click.option(
    "--no-substitute", is_flag=True,
    help="Send every missing store path from here; by default a host first fetches "
    "what its own binary caches have (nix copy --substitute-on-destination).",
)  # fmt: skip
compress_option = click.option(
    "--compress", is_flag=True,
    help="Compress the closure copy's SSH stream (slow links; costs CPU on fast ones).",
)  # fmt: skip


# ------------------------------------------------------------------------------ deploy


def _render_run(res: RunResult, output: str) -> None:
    from hydradeploy.deploy import signals

    if output == "json":
        emit_json(res.as_json())
    elif output == "table":
        rows = []
        for r in res.reports:
            before = "?" if r.generation_before is None else r.generation_before
            after = "?" if r.generation_after is None else r.generation_after
            style = "green" if r.ok else ("yellow" if r.outcome == "skipped" else "red")
            rows.append([
                r.host, f"[{style}]{r.outcome}[/]", f"{before} → {after}", r.failed_step or "",
                str(r.ssh_connections), f"{r.seconds:.1f}s", r.message,
            ])  # fmt: skip
        table(
            "deploy result",
            ("host", "outcome", "generation", "step", "ssh", "time", "details"),
            rows,
        )
        for r in res.reports:
            if r.changes:
                click.echo(changes_line(r))
        if res.pruned is not None:
            from hydradeploy.deploy.prune_cli import show

            show(res.pruned, "table", dry_run=False)
        click.echo(f"record: {res.record} (run {res.run_id})", err=True)
    if res.interrupted:
        raise signals.exit_exception(res.signal)
    if res.outcome != "ok":
        raise OperationFailed("")
    if res.pruned is not None and any(i.action == "delete" and i.done is False for i in res.pruned):
        raise OperationFailed("prune: some deletions failed (see the table)")


@click.command(epilog="Examples:\n\n\b\n  hydradeploy deploy hydra-ai\n  hydradeploy deploy --on @gpu,hydra-amd --max-parallel 2\n  hydradeploy deploy --all --mode boot")  # fmt: skip
@host_selection
@closure_option
@build_on_option
@flake_option
@no_substitute_option
@compress_option
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="switch",
    show_default=True,
    help="switch: activate now and at boot; boot: at the next boot only; test: now, not at "
    "boot; dry-activate: show what would change.",
)
@max_parallel_option
@confirm_timeout_option
@check_timeout_option
@seconds_option(
    "--activation-timeout", 600, 7200, "Seconds switch-to-configuration may take.", minimum=1
)
@stability_window_option
@click.option(
    "--no-rollback", is_flag=True, help="Leave a failed host as it is (no watchdog, no rollback)."
)
@click.option(
    "--keep-going", is_flag=True,
    help="Keep activating the other hosts when one fails (agents still need healthy servers).",
)  # fmt: skip
@click.option(
    "--prune", is_flag=True,
    help="Afterwards delete the objects of manifests removed from k8s/ (see `prune`).",
)  # fmt: skip
@click.option(
    "--reboot", "then_reboot", is_flag=True,
    help="With --mode boot: then `hydradeploy reboot` the hosts; a host failing its checks "
    "after the boot is booted back into its previous generation.",
)  # fmt: skip
@quiet_option
@output_option
@click.pass_context
def deploy(
    ctx: click.Context,
    hosts: tuple[str, ...],
    all_hosts: bool,
    on: tuple[str, ...],
    closure_specs: tuple[str, ...],
    build_on: str,
    flake: str,
    no_substitute: bool,
    compress: bool,
    mode: str,
    max_parallel: int,
    confirm_timeout: int,
    check_timeout: float,
    activation_timeout: float,
    stability_window: float,
    no_rollback: bool,
    keep_going: bool,
    prune: bool,
    then_reboot: bool,
    quiet: bool,
    output: str,
) -> None:
    """Deploy NixOS generations in cluster order, with magic rollback and join checks.

    The cluster-init server goes first, then the other servers one at a time, then the
    agents, at most --max-parallel of them activated and not yet verified at once. A
    host that fails to activate, to confirm over a new SSH connection, or to rejoin k3s
    is rolled back to the generation it had; no further host is activated after it.
    """
    from hydradeploy.deploy import service
    from hydradeploy.deploy.engine import Options
    from hydradeploy.deploy.models import Goal

    inv = load(ctx)
    chosen = _chosen(ctx, inv, hosts, all_hosts, on, required=True)
    closures = _closures(inv, closure_specs, chosen)
    opts = Options(
        goal=Goal(mode), max_parallel=max_parallel, confirm_timeout=confirm_timeout,
        check_timeout=check_timeout, activation_timeout=activation_timeout,
        rollback=not no_rollback, keep_going=keep_going, build_on=build_on,
        flake=flake or _default_flake(), closures=closures, stability_window=stability_window,
        substitute=not no_substitute, compress=compress,
    )  # fmt: skip
    if prune and mode not in ("switch", "test"):
        raise UserError(
            f"--prune needs --mode switch or test (not {mode}): it reads the running system"
        )
    if then_reboot and mode != "boot":
        raise UserError(f"--reboot needs --mode boot (not {mode}): it boots what the deploy set")
    res = service.run(inv, "deploy", chosen, opts, quiet=_quiet(ctx, quiet), prune=prune)
    if then_reboot and res.outcome == "ok":
        from hydradeploy.deploy import reboot_cli

        _render_run(res, "table" if output == "table" else "none")
        before = {r.host: r.generation_before for r in res.reports}
        reboot_cli.run_and_render(
            inv, chosen, quiet=_quiet(ctx, quiet), output=output,
            json_extra={"deploy": res.as_json()}, check_timeout=check_timeout,
            rollback_to={h: g for h, g in before.items() if g is not None},
        )  # fmt: skip
        return
    _render_run(res, output)


@click.command(epilog="Examples:\n\n\b\n  hydradeploy rollback hydra-compute\n  hydradeploy rollback hydra-compute --to 41\n  hydradeploy rollback --on @gpu")  # fmt: skip
@host_selection
@click.option(
    "--to",
    "to",
    type=int,
    metavar="GENERATION",
    help="Generation to go back to (one host only; default: the newest earlier one that "
    "passed hydradeploy's checks, see `generations`).",
)
@confirm_timeout_option
@check_timeout_option
@stability_window_option
@quiet_option
@output_option
@click.pass_context
def rollback(
    ctx: click.Context,
    hosts: tuple[str, ...],
    all_hosts: bool,
    on: tuple[str, ...],
    to: int | None,
    confirm_timeout: int,
    check_timeout: float,
    stability_window: float,
    quiet: bool,
    output: str,
) -> None:
    """Switch hosts back to an earlier generation (watchdog armed), in cluster order,
    then run the checks."""
    from hydradeploy.deploy import generations as gens
    from hydradeploy.deploy import service
    from hydradeploy.deploy.engine import Options

    inv = load(ctx)
    chosen = _chosen(ctx, inv, hosts, all_hosts, on, required=True)
    if to is not None and len(chosen) != 1:
        raise UserError(f"--to {to}: names one generation of one host, not {len(chosen)} hosts")
    closures, errors = gens.rollback_targets(inv, chosen, to)
    if errors:
        raise OperationFailed("; ".join(errors))
    opts = Options(
        confirm_timeout=confirm_timeout, check_timeout=check_timeout,
        stability_window=stability_window,
    )  # fmt: skip
    res = service.run(inv, "rollback", chosen, opts, closures, quiet=_quiet(ctx, quiet))
    _render_run(res, output)


# ------------------------------------------------------------------------------ read-only


@click.command(epilog="Example:\n\n\b\n  hydradeploy generations hydra-ai --output json")
@click.argument("host", shell_complete=complete_hosts)
@output_option
@click.pass_context
def generations(ctx: click.Context, host: str, output: str) -> None:
    """HOST's system generations: dates, which one is current, which ones hydradeploy verified."""
    from hydradeploy.deploy import generations as gens
    from hydradeploy.deploy import verified
    from hydradeploy.transport import RemoteError, connect

    inv = load(ctx)
    h = _chosen(ctx, inv, [host], False, (), required=True)[0]
    try:
        with connect(h) as conn:
            found = gens.list_on(conn)
            good = verified.read(conn)
    except RemoteError as exc:
        raise OperationFailed(str(exc)) from None
    if output == "json":
        emit_json([{**g.as_json(), "verified": g.number in good} for g in found])
        return
    rows = [
        [
            str(g.number),
            g.date,
            "current" if g.current else "",
            "verified" if g.number in good else "",
        ]
        for g in found
    ]
    table(f"{host}: system generations", ("generation", "date", "current", "verified"), rows)


def _known(value: Any, yes: str, no: str) -> str:
    """Unknown (None) is `?`, never the negative answer."""
    return "?" if value is None else (yes if value else no)


def _gpus(d: dict[str, int] | None) -> str:
    if d is None:
        return "?"
    return ", ".join(f"{v} {k.split('.')[0]}" for k, v in sorted(d.items())) or "-"


@click.command(epilog="Examples:\n\n\b\n  hydradeploy status\n  hydradeploy status --on @gpu --output json")  # fmt: skip
@host_selection
@output_option
@click.pass_context
def status(
    ctx: click.Context, hosts: tuple[str, ...], all_hosts: bool, on: tuple[str, ...], output: str
) -> None:
    """Generation, closure age, k3s, node Ready and GPUs allocatable vs inventory, per host
    (every host when none is named). `?` (null in JSON): could not be learned."""
    from hydradeploy.deploy.probe import human_age
    from hydradeploy.deploy.status import look

    inv = load(ctx)
    rows = look(inv, _chosen(ctx, inv, hosts, all_hosts, on, required=False), None)
    for r in rows:
        del r["checks"]
    if output == "json":
        emit_json(rows)
        return
    out = []
    for r in rows:
        gpu_ok = r["gpus_allocatable"] is None or r["gpus_allocatable"] == r["gpus_expected"]
        gen = "?" if r["generation"] is None else str(r["generation"])
        age = human_age(r["closure_age_s"]) if r["closure_age_s"] is not None else "?"
        out.append([
            r["host"], r["role"], gen, age,
            _known(r["k3s_active"], "[green]active[/]", "[red]inactive[/]"),
            {"Ready": "[green]Ready[/]", None: "?"}.get(r["node"], f"[red]{r['node']}[/]"),
            f"{'' if gpu_ok else '[red]'}{_gpus(r['gpus_allocatable'])} / {_gpus(r['gpus_expected'])}{'' if gpu_ok else '[/]'}",
            r["error"],
        ])  # fmt: skip
    cols = ("host", "role", "generation", "age", "k3s", "node", "GPUs allocatable / inventory", "note")  # fmt: skip
    table(f"cluster {inv.cluster.name}", cols, out)


@click.command(epilog="Examples:\n\n\b\n  hydradeploy check\n  hydradeploy check hydra-amd --check-timeout 60")  # fmt: skip
@host_selection
@seconds_option(
    "--check-timeout", 0, 3600, "Keep polling up to this many seconds until the checks pass."
)
@output_option
@click.pass_context
def check(
    ctx: click.Context,
    hosts: tuple[str, ...],
    all_hosts: bool,
    on: tuple[str, ...],
    check_timeout: float,
    output: str,
) -> None:
    """The join and health checks alone (every host when none is named); exit 1 if any
    fails."""
    from hydradeploy.deploy.status import look

    inv = load(ctx)
    chosen = _chosen(ctx, inv, hosts, all_hosts, on, required=False)
    rows = look(inv, chosen, check_timeout or None)
    failed = [r for r in rows if not r["reachable"] or any(not c["ok"] for c in r["checks"])]
    if output == "json":
        emit_json([
            {"host": r["host"], "ok": r not in failed, "error": r["error"], "checks": r["checks"]}
            for r in rows
        ])  # fmt: skip
    else:
        out = []
        for r in rows:
            if not r["reachable"]:
                out.append([r["host"], "ssh", f"[red]{r['error']}[/]"])
            for c in r["checks"]:
                out.append([r["host"], c["check"], "[green]ok[/]" if c["ok"] else f"[red]{c['detail']}[/]"])  # fmt: skip
        table("join and health checks", ("host", "check", "result"), out)
    if failed:
        raise OperationFailed(f"checks failed on {', '.join(r['host'] for r in failed)}")


def _gen(value: Any) -> str:
    return "?" if value is None else str(value)


@click.command(epilog="Examples:\n\n\b\n  hydradeploy history --last 5\n  hydradeploy history --host hydra-ai --cluster hydra")  # fmt: skip
@click.option(
    "--host", "host_filter", shell_complete=complete_hosts, help="Only runs that touched this host."
)
@click.option("--cluster", "cluster_filter", help="Only runs on this cluster (inventory's cluster.name).")  # fmt: skip
@click.option(
    "--this-inventory",
    is_flag=True,
    help="Only runs made with the inventory in use (--inventory or the repository's).",
)
@click.option(
    "--last", type=click.IntRange(1), default=20, show_default=True, help="How many runs."
)
@output_option
@click.pass_context
def history(
    ctx: click.Context,
    host_filter: str | None,
    cluster_filter: str | None,
    this_inventory: bool,
    last: int,
    output: str,
) -> None:
    """The record of past deploys, rollbacks and reboots (who, when, hosts, generations, outcome)."""
    from hydradeploy.cli_options import inventory_path
    from hydradeploy.deploy import record

    entries = record.read_local()
    if host_filter:
        entries = [
            e for e in entries if any(h.get("host") == host_filter for h in e.get("hosts", []))
        ]
    if cluster_filter:
        entries = [e for e in entries if e.get("cluster") == cluster_filter]
    if this_inventory:  # the same file, however either path was written
        from pathlib import Path

        mine = inventory_path(ctx).resolve()
        entries = [
            e for e in entries if e.get("inventory") and Path(e["inventory"]).resolve() == mine
        ]
    entries = entries[-last:]
    if output == "json":
        emit_json(entries)
        return
    if not entries:
        click.echo(f"no deploys recorded yet in {record.local_path()}")
        return
    rows = []
    for e in entries:
        hosts_txt = "; ".join(
            f"{h['host']} {_gen(h.get('generation_before'))}→{_gen(h.get('generation_after'))} "
            f"{h.get('outcome')}"
            for h in e.get("hosts", [])
        )
        rows.append([
            e.get("started") or "?", f"{e.get('user') or '?'}@{e.get('machine') or '?'}",
            e.get("cluster") or "?", e.get("command", "?"), e.get("outcome", "?"), hosts_txt,
        ])  # fmt: skip
    cols = ("when", "who", "cluster", "command", "outcome", "hosts")
    table(f"deploy history ({record.local_path()})", cols, rows)


@click.command(epilog="Examples:\n\n\b\n  hydradeploy plan --all\n  hydradeploy plan hydra-ai --closure hydra-ai=/nix/store/…-nixos-system-hydra-ai")  # fmt: skip
@host_selection
@closure_option
@build_on_option
@flake_option
@no_substitute_option
@max_parallel_option
@output_option
@click.pass_context
def plan(
    ctx: click.Context,
    hosts: tuple[str, ...],
    all_hosts: bool,
    on: tuple[str, ...],
    closure_specs: tuple[str, ...],
    build_on: str,
    flake: str,
    no_substitute: bool,
    max_parallel: int,
    output: str,
) -> None:
    """What a deploy would do, in order, and what would change, without touching anything."""
    from hydradeploy.deploy.planning import make_plan, render_plan

    inv = load(ctx)
    chosen = _chosen(ctx, inv, hosts, all_hosts, on, required=True)
    closures = _closures(inv, closure_specs, chosen)
    result = make_plan(
        inv,
        chosen,
        closures,
        build_on=build_on,
        flake=flake or _default_flake(),
        max_parallel=max_parallel,
        substitute=not no_substitute,
    )
    if output == "json":
        emit_json(result)
    else:
        render_plan(result)
    unseen = [h["host"] for h in result["hosts"] if h.get("error")]
    if unseen:
        raise OperationFailed(f"could not look at {', '.join(unseen)}; the plan is incomplete")
