"""Options every command that takes hosts shares: HOST… names, `--all`, and `--on`
(repeatable, comma lists of @tags and host names: `--on @gpu,hydra-amd`), with shell
completion of host names and tags from the inventory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.shell_completion import CompletionItem

from hydradeploy.errors import UserError

if TYPE_CHECKING:
    from hydradeploy.inventory import Host, Inventory

F = TypeVar("F", bound=Callable[..., Any])


def inventory_path(ctx: click.Context) -> Path:
    root = ctx.find_root()
    obj = root.obj or {}
    path = obj.get("inventory_path") or root.params.get("inventory_path")
    if path is None:
        from hydradeploy.cli import default_inventory

        return default_inventory()
    return Path(path)


def load(ctx: click.Context) -> Inventory:
    """The inventory the command works on; a hint in an error names that file."""
    import shlex

    from hydradeploy.inventory import load_inventory

    path = inventory_path(ctx)
    try:
        return load_inventory(path)
    except UserError as exc:
        generic = "`hydradeploy inventory check`"
        if generic in str(exc):
            named = f"`hydradeploy --inventory {shlex.quote(str(path))} inventory check`"
            raise UserError(str(exc).replace(generic, named)) from None
        raise


def _names_and_tags(ctx: click.Context) -> tuple[list[str], list[str]]:
    try:
        inv = load(ctx)
    except Exception:  # completion must never fail loudly
        return [], []
    tags = sorted({t for h in inv.hosts.values() for t in h.all_tags()})
    return list(inv.hosts), [f"@{t}" for t in tags]


def complete_hosts(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    names, tags = _names_and_tags(ctx)
    words = names + (tags if incomplete.startswith("@") else [])
    return [CompletionItem(w) for w in words if w.startswith(incomplete)]


def complete_host_name(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """One host of the inventory, no @tag (`convert … --host`)."""
    names, _tags = _names_and_tags(ctx)
    return [CompletionItem(w) for w in names if w.startswith(incomplete)]


def complete_selectors(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Completes the last item of a comma list: `--on @gpu,hy<TAB>`."""
    head, _, last = incomplete.rpartition(",")
    prefix = f"{head}," if head else ""
    names, tags = _names_and_tags(ctx)
    return [CompletionItem(prefix + w) for w in tags + names if w.startswith(last)]


def host_selection(f: F) -> F:
    f = click.option(
        "--on",
        "on",
        multiple=True,
        metavar="SEL[,SEL…]",
        shell_complete=complete_selectors,
        help="Hosts by @tag or name, comma-separated, repeatable "
        "(@server, @agent, @gpu, @nvidia, @amd and the inventory's tags).",
    )(f)
    f = click.option("--all", "all_hosts", is_flag=True, help="Every host of the inventory.")(f)
    f = click.argument("hosts", nargs=-1, shell_complete=complete_hosts)(f)
    return f


def _by_tag(inv: Inventory, tag: str) -> list[str]:
    bare = tag.removeprefix("@")
    found = [n for n, h in inv.hosts.items() if bare in h.all_tags()]
    if not bare or not found:
        raise UserError(f"{inv.path}: no host carries the tag @{bare}")
    return found


def select(
    inv: Inventory,
    names: Sequence[str],
    all_hosts: bool,
    on: Iterable[str],
    *,
    required: bool,
) -> list[Host]:
    """The chosen hosts in inventory order. Nothing chosen: every host when not
    `required`, else a usage error."""
    selectors = [s.strip() for group in on for s in group.split(",")]
    if any(not s for s in selectors):
        raise UserError("--on: empty item in the list (expected @TAG or HOST, comma-separated)")
    if not names and not all_hosts and not selectors:
        if required:
            raise UserError("name the hosts: HOST…, --all or --on @TAG")
        return list(inv.hosts.values())
    chosen: set[str] = set(inv.hosts) if all_hosts else set()
    for item in [*names, *selectors]:
        if item.startswith("@"):
            chosen.update(_by_tag(inv, item))
        else:
            chosen.add(inv.host(item).name)
    return [h for n, h in inv.hosts.items() if n in chosen]


def seconds_option(
    name: str, default: float, maximum: float, help: str, minimum: float = 0
) -> Callable[[F], F]:
    """A timeout in seconds (`--timeout`, `--check-timeout` …), bounded, default shown."""
    return click.option(
        name,
        type=click.FloatRange(minimum, maximum),
        default=default,
        show_default=True,
        help=help,
    )
