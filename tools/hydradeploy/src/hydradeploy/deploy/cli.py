"""`hydradeploy plan|deploy|rollback|generations|status|check|history`.

Heavy modules (fabric, rich) are imported inside the commands so `--help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hydradeploy.errors import OperationFailed, UserError

if TYPE_CHECKING:
    from hydradeploy.deploy.models import Closure, HostReport
    from hydradeploy.inventory import Host, Inventory

MODES = ("switch", "boot", "test", "dry-activate")


def _inventory(ctx: click.Context) -> Inventory:
    from hydradeploy.inventory import load_inventory

    path: Path = ctx.obj["inventory_path"]
    return load_inventory(path)


def _select(
    inv: Inventory, names: Sequence[str], all_hosts: bool, tag: str | None, *, required: bool
) -> list[Host]:
    if required and not names and not all_hosts and not tag:
        raise UserError("name the hosts: HOST…, --all or --on @TAG")
    if not names and not all_hosts and not tag:
        return list(inv.hosts.values())
    return inv.select(names, all_hosts=all_hosts, tag=tag)


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


def _console(err: bool = False) -> Any:
    from rich.console import Console

    return Console(
        file=sys.stderr if err else sys.stdout,
        highlight=False,
        soft_wrap=False,
        width=None if sys.stdout.isatty() else 160,
    )


def _json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


selection = [
    click.argument("hosts", nargs=-1),
    click.option("--all", "all_hosts", is_flag=True, help="Every host of the inventory."),
    click.option(
        "--on",
        "tag",
        metavar="@TAG",
        help="Hosts carrying a tag (also @server, @agent, @gpu, @nvidia, @amd).",
    ),
]
output_opt = click.option(
    "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)


F = TypeVar("F", bound=Callable[..., Any])


def _apply(options: list[Any]) -> Callable[[F], F]:
    def deco(f: F) -> F:
        for opt in reversed(options):
            f = opt(f)
        return f

    return deco


# ------------------------------------------------------------------------------ deploy


def _report_table(reports: list[HostReport]) -> None:
    from rich.table import Table

    table = Table(title="deploy result", title_justify="left", show_lines=False)
    for col in ("host", "outcome", "generation", "step", "ssh", "time", "details"):
        table.add_column(col, overflow="fold")
    for r in reports:
        gen = f"{r.generation_before if r.generation_before is not None else '?'} → {r.generation_after if r.generation_after is not None else '?'}"
        style = "green" if r.ok else ("yellow" if r.outcome in ("skipped",) else "red")
        table.add_row(
            r.host,
            f"[{style}]{r.outcome}[/]",
            gen,
            r.failed_step or "",
            str(r.ssh_connections),
            f"{r.seconds:.1f}s",
            r.message,
        )
    _console().print(table)
    for r in reports:
        if r.changes:
            click.echo(
                f"{r.host}: {len(r.changes)} package change(s): "
                + "; ".join(r.changes[:12])
                + (" …" if len(r.changes) > 12 else "")
            )


def _execute(
    ctx: click.Context,
    command: str,
    hosts: list[Host],
    opts: Any,
    closures: dict[str, Closure] | None,
    output: str,
    quiet: bool,
) -> None:
    from hydradeploy.deploy import record, signals
    from hydradeploy.deploy.engine import Engine
    from hydradeploy.deploy.progress import Progress

    intr = signals.install()  # SIGTERM/SIGHUP like SIGINT; a second one never skips a rollback
    inv = _inventory(ctx)
    run_id = record.new_run_id()
    started = record.now_iso()
    progress = Progress([h.name for h in hosts], quiet=quiet)
    engine = Engine(inv, opts, progress, run_id)
    engine.record_meta = {
        k: v
        for k, v in record.entry(run_id, command, started, [], "", sys.argv[1:]).items()
        if k not in ("hosts", "outcome")
    }
    reports: list[HostReport] = []
    interrupted = False
    try:
        with progress, intr.raising():
            reports = engine.run(hosts, closures)
    except KeyboardInterrupt:
        interrupted = True
        reports = list(engine.last_reports)
    outcome = "interrupted" if interrupted else ("ok" if all(r.ok for r in reports) else "failed")
    rec = record.entry(run_id, command, started, reports, outcome, sys.argv[1:])
    path = record.append_local(rec)
    if output == "json":
        _json(
            {
                "id": run_id,
                "outcome": outcome,
                "record": str(path),
                "hosts": [r.as_json() for r in reports],
            }
        )
    else:
        _report_table(reports)
        click.echo(f"record: {path} (run {run_id})", err=True)
    if interrupted:
        raise intr.exit()
    if outcome != "ok":
        raise OperationFailed("")


@click.command()
@_apply(selection)
@click.option(
    "--closure",
    "closure_specs",
    multiple=True,
    metavar="HOST=STOREPATH",
    help="Deploy this prebuilt system closure to HOST.",
)
@click.option(
    "--build-on",
    type=click.Choice(["local", "target"]),
    default="local",
    show_default=True,
    help="Where to build closures not given with --closure.",
)
@click.option(
    "--flake", default=None, help="Flake reference to build from (default: the repository)."
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="switch",
    show_default=True,
    help="switch-to-configuration mode.",
)
@click.option(
    "--max-parallel",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Agents deployed at once.",
)
@click.option(
    "--confirm-timeout",
    type=click.IntRange(1, 3600),
    default=30,
    show_default=True,
    help="Seconds the host waits for the confirmation before rolling back by itself.",
)
@click.option(
    "--check-timeout",
    type=click.FloatRange(0, 3600),
    default=120,
    show_default=True,
    help="Seconds to wait for the join checks to pass.",
)
@click.option(
    "--activation-timeout",
    type=click.FloatRange(1, 7200),
    default=600,
    show_default=True,
    help="Seconds switch-to-configuration may take.",
)
@click.option(
    "--stability-window",
    type=click.FloatRange(0, 600),
    default=10,
    show_default=True,
    help="Seconds k3s must stay up, unrestarted, and the node Ready after the checks pass.",
)
@click.option(
    "--no-rollback", is_flag=True, help="Leave a failed host as it is (no watchdog, no rollback)."
)
@click.option("--keep-going", is_flag=True, help="Continue with later waves when a host fails.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@output_opt
@click.pass_context
def deploy(
    ctx: click.Context,
    hosts: tuple[str, ...],
    all_hosts: bool,
    tag: str | None,
    closure_specs: tuple[str, ...],
    build_on: str,
    flake: str,
    mode: str,
    max_parallel: int,
    confirm_timeout: int,
    check_timeout: float,
    activation_timeout: float,
    stability_window: float,
    no_rollback: bool,
    keep_going: bool,
    quiet: bool,
    output: str,
) -> None:
    """Deploy NixOS generations in cluster order, with magic rollback and join checks.

    The cluster-init server goes first, then the other servers one at a time, then the
    agents in waves of --max-parallel. A host that fails to activate, to confirm over a
    new SSH connection, or to rejoin k3s is rolled back to the generation it had.
    """
    from hydradeploy.deploy.engine import Options

    inv = _inventory(ctx)
    chosen = _select(inv, hosts, all_hosts, tag, required=True)
    closures = _closures(inv, closure_specs, chosen)
    opts = Options(
        mode=mode, max_parallel=max_parallel, confirm_timeout=confirm_timeout, check_timeout=check_timeout,
        activation_timeout=activation_timeout, rollback=not no_rollback, keep_going=keep_going,
        build_on=build_on, flake=flake or _default_flake(), closures=closures,
        stability_window=stability_window,
    )  # fmt: skip
    _execute(ctx, "deploy", chosen, opts, None, output, quiet)


@click.command()
@click.argument("host")
@click.option(
    "--to",
    "to",
    type=int,
    metavar="GENERATION",
    help="Generation to go back to (default: the one before the current).",
)
@click.option("--confirm-timeout", type=click.IntRange(1, 3600), default=30, show_default=True)
@click.option("--check-timeout", type=click.FloatRange(0, 3600), default=120, show_default=True)
@click.option("--quiet", "-q", is_flag=True)
@output_opt
@click.pass_context
def rollback(
    ctx: click.Context,
    host: str,
    to: int | None,
    confirm_timeout: int,
    check_timeout: float,
    quiet: bool,
    output: str,
) -> None:
    """Switch HOST back to an earlier generation (watchdog armed), then run the checks.

    Default: the newest earlier generation that hydradeploy verified (passed its checks).
    """
    from hydradeploy.deploy import nix, verified
    from hydradeploy.deploy.engine import Options
    from hydradeploy.deploy.models import Closure
    from hydradeploy.deploy.remote import Remote, RemoteError, script

    inv = _inventory(ctx)
    h = inv.host(host)
    try:
        with Remote(h) as r:
            gens = nix.parse_generations(
                r.run(
                    nix.list_generations(), timeout=30, check=True, what="list generations"
                ).stdout
            )
            current = next((g.number for g in gens if g.current), None)
            if to is None:  # the newest earlier generation that passed its checks
                target = verified.rollback_target(gens, verified.read(r))
                if isinstance(target, str):
                    raise UserError(f"{host}: {target}")
                to = target
            if to not in {g.number for g in gens}:
                raise UserError(
                    f"{host}: no generation {to} (has {', '.join(str(g.number) for g in gens)})"
                )
            if to == current:
                raise UserError(f"{host}: generation {to} is already the current one")
            link = f"/nix/var/nix/profiles/system-{to}-link"
            path = r.run(
                script('readlink -f "$1"', link), timeout=15, check=True, what="read generation"
            ).stdout.strip()
    except RemoteError as exc:
        raise OperationFailed(str(exc)) from None
    opts = Options(confirm_timeout=confirm_timeout, check_timeout=check_timeout)
    _execute(
        ctx,
        "rollback",
        [h],
        opts,
        {h.name: Closure(path, f"generation {to}", generation=to)},
        output,
        quiet,
    )


# ------------------------------------------------------------------------------ read-only


@click.command()
@click.argument("host")
@output_opt
@click.pass_context
def generations(ctx: click.Context, host: str, output: str) -> None:
    """HOST's system generations: dates, which one is current, which ones hydradeploy verified."""
    from hydradeploy.deploy import nix, verified
    from hydradeploy.deploy.remote import Remote, RemoteError

    inv = _inventory(ctx)
    h = inv.host(host)
    try:
        with Remote(h) as r:
            res = r.run(
                nix.list_generations(), timeout=30, check=True, what="nix-env --list-generations"
            )
            good = verified.read(r)
    except RemoteError as exc:
        raise OperationFailed(str(exc)) from None
    gens = nix.parse_generations(res.stdout)
    if output == "json":
        _json([{**g.as_json(), "verified": g.number in good} for g in gens])
        return
    from rich.table import Table

    table = Table(title=f"{host}: system generations", title_justify="left")
    for col in ("generation", "date", "current", "verified"):
        table.add_column(col)
    for g in gens:
        table.add_row(
            str(g.number),
            g.date,
            "current" if g.current else "",
            "verified" if g.number in good else "",
        )
    _console().print(table)


def _gather(inv: Inventory, hosts: list[Host], check_timeout: float | None) -> list[dict[str, Any]]:
    """Probe every host in parallel and evaluate its checks; one row per host."""
    from concurrent.futures import ThreadPoolExecutor

    from hydradeploy.deploy import checks, preflight, probe
    from hydradeploy.deploy.remote import Remote, RemoteError

    remotes: dict[str, Remote] = {}

    def connect(h: Host) -> tuple[str, Remote | str]:
        try:
            return h.name, Remote(h).open()
        except RemoteError as exc:
            return h.name, str(exc)

    wanted = {h.name for h in hosts} | {s.name for s in inv.servers}
    errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for name, res in pool.map(connect, [h for h in inv.hosts.values() if h.name in wanted]):
            if isinstance(res, str):
                errors[name] = res
            else:
                remotes[name] = res
    try:
        kube = next(
            (
                remotes[s.name]
                for s in sorted(inv.servers, key=lambda s: not s.cluster_init)
                if s.name in remotes
            ),
            None,
        )

        shared = checks.NodeSource(kube)

        def row(h: Host) -> dict[str, Any]:
            own = remotes.get(h.name)
            base: dict[str, Any] = {
                "host": h.name, "role": h.role, "reachable": own is not None, "generation": None,
                "closure": None, "closure_age_s": None, "k3s_active": False, "node_ready": None,
                "gpus_expected": h.gpu_resources(), "gpus_allocatable": {}, "checks": [], "error": errors.get(h.name, ""),
            }  # fmt: skip
            st: probe.HostState | None = None
            if own is not None:
                try:
                    st = probe.probe(own)
                    base.update(
                        generation=st.generation,
                        closure=st.current,
                        closure_age_s=st.closure_age_s,
                        k3s_active=st.k3s == "active",
                    )
                except RemoteError as exc:
                    base["error"] = str(exc)
            kube_h = checks.NodeSource(own) if h.is_server and own is not None else shared
            if check_timeout is None:
                facts = checks.collect(h, own, kube_h)
                results = checks.evaluate(h, inv, facts)
            else:
                results = checks.wait_healthy(h, inv, own, kube_h, timeout=check_timeout)
                facts = checks.collect(h, own, kube_h) if own is not None else checks.Facts()
            node = (facts.nodes or {}).get(h.name)
            if node is not None:
                base["node_ready"] = checks.ready_status(node)[0] == "True"
                alloc = node.get("status", {}).get("allocatable", {}) or {}
                base["gpus_allocatable"] = {
                    k: int(v) for k, v in alloc.items() if k.endswith("/gpu") and str(v).isdigit()
                }
            if st is not None:  # profile and running system agree (issue 15)
                results = [*results, preflight.profile_check(st)]
            base["checks"] = [{"check": r.name, "ok": r.ok, "detail": r.detail} for r in results]
            return base

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(row, hosts))
    finally:
        for r in remotes.values():
            r.close()


def _gpus(d: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.split('.')[0]}" for k, v in sorted(d.items())) or "-"


@click.command()
@_apply(selection)
@output_opt
@click.pass_context
def status(
    ctx: click.Context, hosts: tuple[str, ...], all_hosts: bool, tag: str | None, output: str
) -> None:
    """Generation, closure age, k3s, node Ready and GPUs allocatable vs inventory, per host."""
    from hydradeploy.deploy.probe import human_age

    inv = _inventory(ctx)
    rows = _gather(inv, _select(inv, hosts, all_hosts, tag, required=False), None)
    for r in rows:
        del r["checks"]
    if output == "json":
        _json(rows)
        return
    from rich.table import Table

    table = Table(title=f"cluster {inv.cluster.name}", title_justify="left")
    for col in (
        "host",
        "role",
        "generation",
        "age",
        "k3s",
        "node",
        "GPUs allocatable / inventory",
        "note",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        gpu_ok = r["gpus_allocatable"] == r["gpus_expected"] or (
            not r["gpus_expected"] and not r["gpus_allocatable"]
        )
        node = {True: "[green]Ready[/]", False: "[red]NotReady[/]", None: "[red]absent[/]"}[
            r["node_ready"]
        ]
        table.add_row(
            r["host"], r["role"], str(r["generation"] if r["generation"] is not None else "?"), human_age(r["closure_age_s"]),
            "[green]active[/]" if r["k3s_active"] else "[red]inactive[/]", node,
            f"{'' if gpu_ok else '[red]'}{_gpus(r['gpus_allocatable'])} / {_gpus(r['gpus_expected'])}{'' if gpu_ok else '[/]'}",
            r["error"],
        )  # fmt: skip
    _console().print(table)


@click.command()
@_apply(selection)
@click.option(
    "--check-timeout",
    type=click.FloatRange(0, 3600),
    default=0,
    show_default=True,
    help="Keep polling up to this many seconds until the checks pass.",
)
@output_opt
@click.pass_context
def check(
    ctx: click.Context,
    hosts: tuple[str, ...],
    all_hosts: bool,
    tag: str | None,
    check_timeout: float,
    output: str,
) -> None:
    """The join and health checks alone; exit 1 if any fails."""
    inv = _inventory(ctx)
    rows = _gather(inv, _select(inv, hosts, all_hosts, tag, required=False), check_timeout or None)
    failed = [r for r in rows if not r["reachable"] or any(not c["ok"] for c in r["checks"])]
    if output == "json":
        _json(
            [
                {
                    "host": r["host"],
                    "ok": r not in failed,
                    "error": r["error"],
                    "checks": r["checks"],
                }
                for r in rows
            ]
        )
    else:
        from rich.table import Table

        table = Table(title="join and health checks", title_justify="left")
        for col in ("host", "check", "result"):
            table.add_column(col, overflow="fold")
        for r in rows:
            if not r["reachable"]:
                table.add_row(r["host"], "ssh", f"[red]{r['error']}[/]")
            for c in r["checks"]:
                table.add_row(
                    r["host"], c["check"], "[green]ok[/]" if c["ok"] else f"[red]{c['detail']}[/]"
                )
        _console().print(table)
    if failed:
        raise OperationFailed(f"checks failed on {', '.join(r['host'] for r in failed)}")


@click.command()
@click.option("--host", "host_filter", help="Only runs that touched this host.")
@click.option(
    "--last", type=click.IntRange(1), default=20, show_default=True, help="How many runs."
)
@output_opt
def history(host_filter: str | None, last: int, output: str) -> None:
    """The record of past deploys and rollbacks (who, when, hosts, generations, outcome)."""
    from hydradeploy.deploy import record

    entries = record.read_local()
    if host_filter:
        entries = [
            e for e in entries if any(h.get("host") == host_filter for h in e.get("hosts", []))
        ]
    entries = entries[-last:]
    if output == "json":
        _json(entries)
        return
    if not entries:
        click.echo(f"no deploys recorded yet in {record.local_path()}")
        return
    from rich.table import Table

    table = Table(title=f"deploy history ({record.local_path()})", title_justify="left")
    for col in ("when", "who", "command", "outcome", "hosts"):
        table.add_column(col, overflow="fold")
    for e in entries:
        hosts_txt = "; ".join(
            f"{h['host']} {h.get('generation_before')}→{h.get('generation_after')} {h.get('outcome')}"
            for h in e.get("hosts", [])
        )
        table.add_row(
            e.get("started", "?"),
            f"{e.get('user')}@{e.get('machine')}",
            e.get("command", "?"),
            e.get("outcome", "?"),
            hosts_txt,
        )
    _console().print(table)


@click.command()
@_apply(selection)
@click.option("--closure", "closure_specs", multiple=True, metavar="HOST=STOREPATH")
@click.option(
    "--build-on", type=click.Choice(["local", "target"]), default="local", show_default=True
)
@click.option(
    "--flake", default=None, help="Flake reference to build from (default: the repository)."
)
@click.option("--max-parallel", type=click.IntRange(1, 64), default=4, show_default=True)
@output_opt
@click.pass_context
def plan(
    ctx: click.Context,
    hosts: tuple[str, ...],
    all_hosts: bool,
    tag: str | None,
    closure_specs: tuple[str, ...],
    build_on: str,
    flake: str,
    max_parallel: int,
    output: str,
) -> None:
    """What a deploy would do, in order, and what would change, without touching anything."""
    from hydradeploy.deploy.planning import make_plan, render_plan

    inv = _inventory(ctx)
    chosen = _select(inv, hosts, all_hosts, tag, required=True)
    closures = _closures(inv, closure_specs, chosen)
    result = make_plan(
        inv,
        chosen,
        closures,
        build_on=build_on,
        flake=flake or _default_flake(),
        max_parallel=max_parallel,
    )
    if output == "json":
        _json(result)
    else:
        render_plan(result, _console())
    unseen = [h["host"] for h in result["hosts"] if h.get("error")]
    if unseen:
        raise OperationFailed(f"could not look at {', '.join(unseen)}; the plan is incomplete")
