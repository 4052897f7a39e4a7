"""A host's system generations, and which one a rollback goes to."""

from __future__ import annotations

from hydradeploy.deploy import nix, verified
from hydradeploy.deploy.models import SYSTEM_PROFILE, Closure, Generation
from hydradeploy.errors import UserError
from hydradeploy.inventory import Host, Inventory
from hydradeploy.transport import Connection, RemoteError, script
from hydradeploy.transport.pool import Pool


def list_on(conn: Connection) -> list[Generation]:
    res = conn.run(
        nix.list_generations(), timeout=30, check=True, what="nix-env --list-generations"
    )
    return nix.parse_generations(res.stdout)


def pick(host: str, gens: list[Generation], to: int | None, good: set[int]) -> int:
    """The generation `rollback --to` means: the given one, else the newest earlier one
    that hydradeploy verified (`good`, verified.py) — never one that failed. UserError
    (exit 2) when it does not exist or is the current one."""
    current = next((g.number for g in gens if g.current), None)
    if to is None:
        target = verified.rollback_target(gens, good)
        if isinstance(target, str):
            raise UserError(f"{host}: {target}")
        return target
    if to not in {g.number for g in gens}:
        raise UserError(
            f"{host}: no generation {to} (has {', '.join(str(g.number) for g in gens)})"
        )
    if to == current:
        raise UserError(f"{host}: generation {to} is already the current one")
    return to


def rollback_target(conn: Connection, to: int | None) -> Closure:
    """The closure of the generation to roll back to, read from the host."""
    number = pick(conn.name, list_on(conn), to, verified.read(conn) if to is None else set())
    link = f"{SYSTEM_PROFILE}-{number}-link"  # NixOS/nix src/libstore/profiles.cc @2.8.0 makeName
    path = conn.run(
        script('readlink -f "$1"', link), timeout=15, check=True, what="read generation"
    ).stdout.strip()
    return Closure(path, f"generation {number}", generation=number)


def rollback_targets(
    inv: Inventory, hosts: list[Host], to: int | None, pool: Pool | None = None
) -> tuple[dict[str, Closure], list[str]]:
    """Each host's rollback closure, read in parallel; and one line per host that could
    not be read. A generation that does not fit is a UserError (exit 2)."""
    pool = pool or Pool(inv)
    with pool:
        errors = pool.open_many(hosts)
        out: dict[str, Closure] = {}
        problems = [errors[h.name] for h in hosts if h.name in errors]
        for h in hosts:
            conn = pool.peek(h)
            if conn is None:
                continue
            try:
                out[h.name] = rollback_target(conn, to)
            except RemoteError as exc:
                problems.append(str(exc))
    return out, problems
