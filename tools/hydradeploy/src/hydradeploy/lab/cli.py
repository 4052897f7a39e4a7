"""`hydradeploy lab …`: test hosts on this machine for rehearsing deploys."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from hydradeploy.errors import OperationFailed, UserError
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

    \b
    Examples:
      hydradeploy lab up --dir /tmp/lab --inventory hosts/inventory.toml
      hydradeploy lab up --dir /tmp/lab hydra-ai:server:nvidia=2 hydra-compute:agent:nvidia=2 \\
          hydra-amd:agent:amd=1
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
    Examples:
      hydradeploy lab closure --dir /tmp/lab hydra-compute
      hydradeploy lab closure --dir /tmp/lab hydra-compute --fault join --manifests k8s
      hydradeploy lab closure --dir /tmp/lab hydra-compute --payload-mib 200
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
    until its systemd has finished booting.

    \b
    Example:
      hydradeploy lab reboot --dir /tmp/lab hydra-compute
    """
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
    """Cut HOST's network link (from the outside).

    \b
    Example:
      hydradeploy lab cut --dir /tmp/lab hydra-compute
    """
    _lab(lab_dir).cut(host)


@lab.command()
@DIR_OPTION
@click.argument("host")
def restore(lab_dir: Path, host: str) -> None:
    """Restore HOST's network link.

    \b
    Example:
      hydradeploy lab restore --dir /tmp/lab hydra-compute
    """
    _lab(lab_dir).restore(host)


@lab.command("kill-sshd")
@DIR_OPTION
@click.argument("host")
def kill_sshd(lab_dir: Path, host: str) -> None:
    """Stop HOST's sshd (open sessions stay).

    \b
    Example:
      hydradeploy lab kill-sshd --dir /tmp/lab hydra-amd
    """
    _lab(lab_dir).kill_sshd(host)


@lab.command("start-sshd")
@DIR_OPTION
@click.argument("host")
def start_sshd(lab_dir: Path, host: str) -> None:
    """Start HOST's sshd again.

    \b
    Example:
      hydradeploy lab start-sshd --dir /tmp/lab hydra-amd
    """
    _lab(lab_dir).start_sshd(host)


@lab.command()
@DIR_OPTION
@click.argument("host")
@click.argument("ms", type=click.IntRange(min=0))
def slow(lab_dir: Path, host: str, ms: int) -> None:
    """Add MS ms of latency on HOST's link (0 removes it).

    \b
    Examples:
      hydradeploy lab slow --dir /tmp/lab hydra-compute 300
      hydradeploy lab slow --dir /tmp/lab hydra-compute 0
    """
    _lab(lab_dir).slow(host, ms)


@lab.command("exec", context_settings={"ignore_unknown_options": True})
@DIR_OPTION
@click.argument("host")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=60, show_default=True,
    help="Seconds to wait for the command, then exit 1 (it may still run inside HOST).",
)  # fmt: skip
def exec_(lab_dir: Path, host: str, argv: tuple[str, ...], timeout: float) -> None:
    """Run a command inside HOST, without SSH.

    \b
    Examples:
      hydradeploy lab exec --dir /tmp/lab hydra-compute -- ip addr
      hydradeploy lab exec --dir /tmp/lab hydra-ai --timeout 120 -- k3s kubectl get nodes
    """
    import subprocess

    try:
        proc = _lab(lab_dir).run(host, list(argv), timeout=timeout)
    except subprocess.TimeoutExpired:  # nsenter is killed; its forked child may live on
        raise OperationFailed(
            f"lab exec: {host}: {argv[0]} did not finish within {timeout:g}s"
            " (it may still run inside the host)"
        ) from None
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    sys.exit(proc.returncode)


@lab.command("fill-disk")
@DIR_OPTION
@click.argument("host")
def fill_disk(lab_dir: Path, host: str) -> None:
    """Fill HOST's /nix (copies to it then fail).

    \b
    Example:
      hydradeploy lab fill-disk --dir /tmp/lab hydra-compute
    """
    _lab(lab_dir).fill_disk(host)


@lab.command("free-disk")
@DIR_OPTION
@click.argument("host")
def free_disk(lab_dir: Path, host: str) -> None:
    """Undo fill-disk.

    \b
    Example:
      hydradeploy lab free-disk --dir /tmp/lab hydra-compute
    """
    _lab(lab_dir).free_disk(host)


@lab.command()
@DIR_OPTION
@output_option
def status(lab_dir: Path, output: str) -> None:
    """Hosts of the lab: address, link, system state, sshd, k3s, node Ready.

    \b
    Examples:
      hydradeploy lab status --dir /tmp/lab
      hydradeploy lab status --dir /tmp/lab --output json
    """
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

    \b
    Example:
      hydradeploy lab down --dir /tmp/lab
    """
    _lab(lab_dir).down()
    _say(f"lab: {lab_dir} is down")
