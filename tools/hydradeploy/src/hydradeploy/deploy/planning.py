"""`plan`: the order, the waves (the agents' one with its window) and per host what a
deploy would change. Read-only: it connects to look (current generation, which store
paths the host lacks) and changes nothing, takes no lock."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hydradeploy.deploy import closure, nix, order, probe
from hydradeploy.inventory import Host, Inventory
from hydradeploy.transport import Connection, RemoteError, connect


def copy_preview(r: Connection, lacking: list[str], *, substitute: bool) -> dict[str, Any]:
    """How the lacking paths would arrive: fetched by the host from its own caches (its
    answer to `nix-store --realise --dry-run`) or sent from here. Bytes are NAR sizes
    (unpacked), read from the local store."""
    fetched: set[str] = set()
    caches_error = None
    if substitute and lacking:
        try:
            fetched = closure.fetchable_on(r, lacking)
        except RemoteError as exc:  # e.g. caches that do not answer: counted as sent
            caches_error = str(exc)
    sizes = closure.nar_sizes(lacking)
    send = [p for p in lacking if p not in fetched]
    return {
        "substitute": substitute,
        "from_caches": {"paths": len(fetched), "bytes": sum(sizes[p] for p in fetched)},
        "from_deployer": {"paths": len(send), "bytes": sum(sizes[p] for p in send)},
        "caches_error": caches_error,
    }


def host_plan(
    host: Host, path: str | None, *, build_on: str, flake: str, substitute: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "host": host.name,
        "role": host.role,
        "address": host.address,
        "closure": path,
        "closure_source": "prebuilt" if path else f"build-{build_on}",
        "reachable": False,
    }
    if path is None:
        cmd = (
            nix.build_toplevel(flake, host.name)
            if build_on == "local"
            else nix.remote_build_toplevel(flake, host.name)
        )
        out["build_command"] = closure.shell(cmd)
    try:
        with connect(host) as r:
            st = probe.probe(r)
            out.update(
                reachable=True,
                kind=st.kind,
                generation=st.generation,
                current=st.current,
                k3s=st.k3s,
                store_free_kb=st.store_free_kb,
            )
            if path is not None:
                if path == st.current:
                    out["changes"] = []
                    out["summary"] = "already running this closure (re-activation only)"
                else:
                    new = closure.local_requisites(path)
                    lacking = closure.missing_on(r, new)
                    old = closure.remote_requisites(r, st.current)
                    out["paths_to_copy"] = len(lacking)
                    out["copy"] = copy_preview(r, lacking, substitute=substitute)
                    out["changes"] = nix.closure_changes(old, new)
                    caches, sent = out["copy"]["from_caches"], out["copy"]["from_deployer"]
                    out["summary"] = (
                        f"{len(lacking)} of {len(new)} store paths missing: "
                        f"{caches['paths']} from its caches ({_mib(caches['bytes'])}), "
                        f"{sent['paths']} sent from here ({_mib(sent['bytes'])}); "
                        f"{len(out['changes'])} package change(s)"
                    )
                    if out["copy"]["caches_error"]:
                        out["summary"] += " (its caches did not answer: counted as sent)"
            else:
                out["summary"] = "closure built at deploy time; changes known after the build"
    except (RemoteError, closure.ClosureError) as exc:
        out["error"] = str(exc)
        out["summary"] = f"unreachable: {exc}"
    return out


def make_plan(
    inv: Inventory,
    hosts: Sequence[Host],
    closures: dict[str, str],
    *,
    build_on: str,
    flake: str,
    max_parallel: int,
    substitute: bool = True,
) -> dict[str, Any]:
    plan = order.waves(hosts, max_parallel)

    def one(h: Host) -> dict[str, Any]:
        return host_plan(
            h, closures.get(h.name), build_on=build_on, flake=flake, substitute=substitute
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        per_host = list(pool.map(one, hosts))
    for entry, extra in zip(per_host, _node_preview(inv, hosts), strict=True):
        entry.update(extra)  # the label/taint changes (deploy/node_sync.py)
    return {
        "waves": [
            {"wave": w.index, "kind": w.kind, "hosts": w.names, "window": w.window} for w in plan
        ],
        "hosts": per_host,
    }


def _node_preview(inv: Inventory, hosts: Sequence[Host]) -> list[dict[str, Any]]:
    from hydradeploy.deploy import node_sync

    found = node_sync.preview(inv, hosts)
    return [found[h.name] for h in hosts]


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _short(path: str) -> str:
    """/nix/store/<hash>-name → name (the full path is in --output json)."""
    return path.rsplit("/", 1)[-1].split("-", 1)[-1]


def render_plan(result: dict[str, Any]) -> None:
    """The plan as a table, then each host's build command and changes as whole lines
    (a command is never wrapped: copy-paste must work)."""
    import click

    from hydradeploy.output import table

    by_name = {h["host"]: h for h in result["hosts"]}
    rows = []
    for w in result["waves"]:
        for name in w["hosts"]:
            h = by_name[name]
            now = f"gen {h['generation']}" if h.get("generation") is not None else "?"
            at_once = f", {w['window']} at once" if w["kind"] == "agents" else ""
            stage = f"{w['wave']} ({w['kind']}{at_once})"
            rows.append([
                stage, name, h["role"], now,
                _short(h["closure"]) if h["closure"] else h["closure_source"], h["summary"],
            ])  # fmt: skip
    table("deploy plan", ("wave", "host", "role", "now", "closure", "what changes"), rows)
    for w in result["waves"]:
        if w["kind"] == "agents" and len(w["hosts"]) > w["window"]:
            click.echo(
                f"wave {w['wave']}: at most {w['window']} agents activated and not yet verified "
                f"at once, the next {w['window']} copied to meanwhile; each starts when a "
                "slot frees",
                err=True,
            )
    for h in result["hosts"]:
        if h.get("build_command"):
            click.echo(f"{h['host']}: would run {h['build_command']}")
        for line in h.get("changes", [])[:40]:
            click.echo(f"{h['host']}:   {line}")
        for line in h.get("node_changes", []):
            click.echo(f"{h['host']}: node {line}")
        if h.get("node_changes_error"):
            click.echo(f"{h['host']}: node labels/taints: {h['node_changes_error']}")
