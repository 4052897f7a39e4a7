"""`hydradeploy lab …`: test hosts on this machine for rehearsing deploys."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from hydradeploy.errors import UserError
from hydradeploy.lab.spec import FAULTS, HostSpec
from hydradeploy.output import emit_json, output_option, table

DIR_OPTION = click.option(
    "--dir", "lab_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="Directory holding all state of the lab.",
)  # fmt: skip


def _lab(lab_dir: Path, **options: Any) -> Any:
    from hydradeploy.lab.lab import Lab
    from hydradeploy.lab.requirements import missing

    reason = missing()
    if reason:
        raise UserError(f"lab: {reason}")
    return Lab(lab_dir, **options)


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def lab() -> None:
    """Local lab of test hosts: real SSH, real Nix stores, simulated k3s, faults."""


@lab.command()
@DIR_OPTION
@click.argument("hosts", nargs=-1, metavar="HOST:ROLE[:GPUS]...")
@click.option(
    "--inventory", "source", type=click.Path(dir_okay=False, path_type=Path),
    help="Take hosts, roles, labels, taints, GPUs and microVMs from this inventory.",
)  # fmt: skip
@click.option(
    "--grace", type=click.FloatRange(min=1), default=4.0, show_default=True,
    help="Seconds without heartbeat before a node turns NotReady.",
)  # fmt: skip
def up(lab_dir: Path, hosts: tuple[str, ...], source: Path | None, grace: float) -> None:
    """Start lab hosts; prints the lab inventory path last.

    Example: hydradeploy lab up --dir /tmp/lab srv:server:nvidia=2 w1:agent:nvidia=2 edge:agent:amd=1
    """
    if bool(hosts) == bool(source):
        raise UserError("lab up: give either HOST:ROLE[:GPUS]… or --inventory FILE")
    specs = [HostSpec.parse(h) for h in hosts]
    from rich.console import Console

    console = Console(stderr=True)
    started = time.monotonic()
    with console.status(f"lab up in {lab_dir}") as spinner:

        def progress(message: str) -> None:
            spinner.update(f"lab up: {message}")
            if not console.is_terminal:
                console.print(f"lab: {message}", highlight=False)

        the_lab = _lab(lab_dir, grace_seconds=grace, progress=progress)
        path = the_lab.up_from_inventory(source) if source else the_lab.up(specs)
    _say(f"lab: up in {time.monotonic() - started:.1f}s; all nodes Ready")
    _print_hosts(the_lab)
    click.echo(str(path))


def _print_hosts(the_lab: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("host", "role", "address", box=None)
    for host in the_lab.hosts.values():
        table.add_row(host.name, host.role, host.address)
    Console(file=sys.stderr).print(table)


@lab.command()
@DIR_OPTION
@click.argument("host")
@click.option("--fault", type=click.Choice(FAULTS), help="Build a closure that fails on purpose.")
@click.option(
    "--manifests", type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A k8s/ directory whose YAML the closure puts into k3s's auto-deploy directory.",
)  # fmt: skip
@click.option(
    "--restart-sshd", is_flag=True,
    help="A changed (valid) sshd_config: activating the closure restarts ssh.service.",
)  # fmt: skip
@click.option(
    "--payload-mib", type=click.IntRange(min=0), default=0, show_default=True,
    help="Add N MiB of incompressible data in up to 40 store paths the closure references.",
)  # fmt: skip
@click.option(
    "--payload-seed", metavar="SEED",
    help="What the payload's contents and store paths derive from (default: HOST); "
    "the same seed and size give the same payload paths.",
)  # fmt: skip
def closure(
    lab_dir: Path, host: str, fault: str | None, manifests: Path | None, restart_sshd: bool,
    payload_mib: int, payload_seed: str | None,
) -> None:  # fmt: skip
    """Build a closure for HOST; prints its store path last.

    Its k3s settings come from the lab inventory; --fault makes it fail on purpose;
    --payload-mib makes it as big as a real system's, in many store paths.

    \b
    Example:
      hydradeploy lab closure --dir /tmp/lab w1 --payload-mib 200
    """
    the_lab = _lab(lab_dir)
    with _working(f"lab closure: building {host}'s closure with {payload_mib} MiB of payload",
                  payload_mib > 0):  # fmt: skip
        path = the_lab.closure(
            host, fault=fault, manifests=manifests, restart_sshd=restart_sshd,
            payload_mib=payload_mib, payload_seed=payload_seed,
        )  # fmt: skip
    click.echo(path)


@contextlib.contextmanager
def _working(message: str, show: bool = True) -> Iterator[None]:
    """A spinner on stderr while a slow step runs (a line when stderr is no terminal)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not show:
        yield
    elif console.is_terminal:
        with console.status(message):
            yield
    else:
        console.print(message, highlight=False)
        yield


@lab.command()
@DIR_OPTION
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@output_option
def cache(lab_dir: Path, paths: tuple[str, ...], output: str) -> None:
    """Put the closures of store PATHs into the lab's binary cache; prints its URL last.

    The cache is signed with the lab's key (DIR/cache-key.sec) and served over HTTP on
    the lab network; every lab host's nix.conf lists it as its substituter and trusts
    its public key, so hosts substitute these paths instead of receiving them.

    \b
    Example (only the payload of closure $P, so the deployer sends the rest):
      hydradeploy lab cache --dir /tmp/lab $(nix-store -q --references $P | grep payload)

    --output json: url, public_key, cache_dir, paths (the closures' paths), nar_bytes.
    """
    from hydradeploy.lab import cache as lab_cache

    the_lab = _lab(lab_dir)
    with _working(f"lab cache: copying the closures of {len(paths)} path(s) into the cache"):
        url = the_lab.cache(list(paths))
    if output == "json":
        closure_paths, nar_bytes = lab_cache.closure_of(list(paths))
        emit_json({
            "url": url, "public_key": the_lab.cache_public_key,
            "cache_dir": str(the_lab.cache_dir), "paths": closure_paths, "nar_bytes": nar_bytes,
        })  # fmt: skip
        return
    _say(f"lab: {len(paths)} closure(s) in {the_lab.cache_dir}, served at {url}, "
         f"key {the_lab.cache_public_key}")  # fmt: skip
    click.echo(url)


@lab.command()
@DIR_OPTION
@click.argument("host")
def reboot(lab_dir: Path, host: str) -> None:
    """Reboot HOST (`systemctl reboot` inside; it boots again with a new PID 1) and wait
    until its systemd has finished booting."""
    the_lab = _lab(lab_dir)
    before = the_lab.boots(host)
    the_lab.reboot(host)
    deadline = time.monotonic() + 60
    while the_lab.boots(host) == before or the_lab.leader_pid(host) is None:
        if time.monotonic() > deadline:
            raise UserError(f"lab reboot: {host} did not boot again within 60s")
        time.sleep(0.1)
    _say(f"lab: {host} rebooted: {the_lab.wait_booted(host)}")


@lab.command()
@DIR_OPTION
@click.argument("host")
def cut(lab_dir: Path, host: str) -> None:
    """Cut HOST's network link (from the outside)."""
    _lab(lab_dir).cut(host)


@lab.command()
@DIR_OPTION
@click.argument("host")
def restore(lab_dir: Path, host: str) -> None:
    """Restore HOST's network link."""
    _lab(lab_dir).restore(host)


@lab.command("kill-sshd")
@DIR_OPTION
@click.argument("host")
def kill_sshd(lab_dir: Path, host: str) -> None:
    """Stop HOST's sshd (open sessions stay)."""
    _lab(lab_dir).kill_sshd(host)


@lab.command("start-sshd")
@DIR_OPTION
@click.argument("host")
def start_sshd(lab_dir: Path, host: str) -> None:
    """Start HOST's sshd again."""
    _lab(lab_dir).start_sshd(host)


@lab.command()
@DIR_OPTION
@click.argument("host")
@click.argument("ms", type=click.IntRange(min=0))
def slow(lab_dir: Path, host: str, ms: int) -> None:
    """Add MS ms of latency on HOST's link (0 removes it)."""
    _lab(lab_dir).slow(host, ms)


@lab.command("exec", context_settings={"ignore_unknown_options": True})
@DIR_OPTION
@click.argument("host")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--timeout", type=click.FloatRange(min=1), default=60, show_default=True)
def exec_(lab_dir: Path, host: str, argv: tuple[str, ...], timeout: float) -> None:
    """Run a command inside HOST, without SSH.

    Example: hydradeploy lab exec --dir D w1 -- ip addr
    """
    proc = _lab(lab_dir).run(host, list(argv), timeout=timeout)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    sys.exit(proc.returncode)


@lab.command("fill-disk")
@DIR_OPTION
@click.argument("host")
def fill_disk(lab_dir: Path, host: str) -> None:
    """Fill HOST's /nix (copies to it then fail)."""
    _lab(lab_dir).fill_disk(host)


@lab.command("free-disk")
@DIR_OPTION
@click.argument("host")
def free_disk(lab_dir: Path, host: str) -> None:
    """Undo fill-disk."""
    _lab(lab_dir).free_disk(host)


@lab.command()
@DIR_OPTION
@output_option
def status(lab_dir: Path, output: str) -> None:
    """Hosts of the lab: address, link, system state, sshd, k3s, node Ready."""
    rows = _lab(lab_dir).status()
    if output == "json":
        emit_json(rows)
        return
    cols = ("host", "role", "address", "link", "system", "sshd", "k3s", "node", "generation",
            "boots")  # fmt: skip
    table("lab", cols, [[str(r[c]) for c in cols] for r in rows])


@lab.command()
@DIR_OPTION
def down(lab_dir: Path) -> None:
    """Remove everything the lab created (also after a crash).

    Every namespace, process, mount and file; idempotent.
    """
    _lab(lab_dir).down()
    _say(f"lab: {lab_dir} is down")
