"""`hydradeploy secrets …`: the k3s token and Secret manifests, age-encrypted to the
hosts' SSH host keys (agenix). Heavy modules are imported inside the commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from hydradeploy.cli_options import host_selection, seconds_option, select
from hydradeploy.errors import OperationFailed, UserError

IDENTITY_HELP = (
    "SSH private key to decrypt with (repeatable; env HYDRA_SECRETS_IDENTITY; "
    "default ~/.ssh/id_ed25519, ~/.ssh/id_rsa)."
)


def _identity_option(f: Any) -> Any:
    return click.option(
        "-i",
        "--identity",
        "identities",
        multiple=True,
        envvar="HYDRA_SECRETS_IDENTITY",
        type=click.Path(dir_okay=False, path_type=Path),
        help=IDENTITY_HELP,
    )(f)


def _output_option(f: Any) -> Any:
    from hydradeploy.output import output_option

    return output_option(f)


def _workspace(ctx: click.Context) -> Any:
    from hydradeploy.cli_options import load
    from hydradeploy.secrets.store import Store
    from hydradeploy.secrets.workspace import Workspace

    # cli_options.load: an inventory error's hint names the --inventory in use
    return Workspace(load(ctx), Store(ctx.obj["secrets_dir"]))


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from hydradeploy.output import table

    table(title, columns, rows)


def _progress(what: str) -> Any:
    """A spinner on stderr while slow work runs (silent when stderr is not a terminal)."""
    from rich.console import Console

    return Console(stderr=True).status(what)


def _json(data: Any) -> None:
    from hydradeploy.output import emit_json

    emit_json(data)


@click.group()
@click.option(
    "--dir",
    "secrets_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The secrets directory (default: secrets/ of the repository).",
)
@click.pass_context
def secrets(ctx: click.Context, secrets_dir: Path | None) -> None:
    """The k3s token and Secret manifests, age-encrypted to each host's SSH host key
    (agenix): never in /nix/store, never in plain text in the repository."""
    from hydradeploy.cli import repo_root

    ctx.ensure_object(dict)
    ctx.obj.setdefault("inventory_path", repo_root() / "hosts" / "inventory.toml")
    ctx.obj["repo_root"] = repo_root()
    ctx.obj["secrets_dir"] = secrets_dir or repo_root() / "secrets"


@secrets.command(
    epilog="Examples:\n\n\b\n  hydradeploy secrets init\n  hydradeploy secrets init --token-stdin < token.txt"
)
@click.option("--force", is_flag=True, help="Replace an existing token.")
@click.option("--show", is_flag=True, help="Print the new token on stdout.")
@click.option(
    "--token-stdin", is_flag=True, help="Read the token from stdin (an existing cluster's)."
)
@click.pass_context
def init(ctx: click.Context, force: bool, show: bool, token_stdin: bool) -> None:
    """Generate a strong k3s token and encrypt it to every cluster host."""
    from hydradeploy.secrets.token import init_token

    ws = _workspace(ctx)
    given = sys.stdin.read() if token_stdin else None
    token = init_token(ws, force=force, given=given)
    path = ws.store.path(ws.store.files()[0])
    click.echo(f"wrote {path} for {len(ws.inventory.hosts)} hosts and the admins", err=True)
    if show:
        click.echo(token)


@secrets.command(
    epilog="Examples:\n\n\b\n  hydradeploy secrets hostkeys --all\n"
    "  hydradeploy secrets hostkeys hydra-amd --accept-new"
)
@host_selection
@click.option("--from-inventory", is_flag=True, help="Use the inventory's host_key values; no SSH.")
@click.option(
    "--accept-new",
    is_flag=True,
    help="Trust a host with no known key yet (first use; its fingerprint is shown).",
)
@seconds_option("--timeout", 10.0, 300, "Seconds per SSH key exchange.", minimum=1)
@_output_option
@click.pass_context
def hostkeys(
    ctx: click.Context,
    hosts: tuple[str, ...],
    all_hosts: bool,
    on: tuple[str, ...],
    from_inventory: bool,
    accept_new: bool,
    timeout: float,
    output: str,
) -> None:
    """Collect each host's ed25519 host key over SSH (verified against known_hosts or the
    inventory) into secrets/host-keys.toml, and regenerate secrets/secrets.nix."""
    from hydradeploy.secrets.hostkeys import Collected, collect, record_host_keys
    from hydradeploy.secrets.keys import InvalidKey, parse_public_key

    ws = _workspace(ctx)
    inv = ws.inventory
    chosen = select(inv, hosts, all_hosts, on, required=False)
    if from_inventory:
        results = []
        for h in chosen:
            if not h.ssh.host_key:
                raise UserError(f"{inv.path}: hosts.{h.name}.ssh.host_key is not set")
            try:
                key = parse_public_key(h.ssh.host_key, ed25519_only=True)
            except InvalidKey as exc:
                raise UserError(f"{inv.path}: hosts.{h.name}.ssh.host_key: {exc}") from None
            results.append(Collected(h.name, key, "verified", "from the inventory"))
    else:
        with _progress(f"collecting host keys from {len(chosen)} host(s)"):
            results = collect(chosen, accept_new, timeout)
    rows, needs_rekey, problems = record_host_keys(ws, results)
    failed = [r for r in results if not r.ok]
    if output == "json":
        _json({"hosts": rows, "needs_rekey": needs_rekey, "written": not failed})
    else:
        _table(
            "host keys",
            ["host", "status", "fingerprint", "change", "detail"],
            [[r["host"], r["status"], r["fingerprint"], r["change"], r["detail"]] for r in rows],
        )
        for problem in problems:
            click.echo(f"secrets.nix not regenerated: {problem}", err=True)
        if needs_rekey:
            click.echo(
                f"recipients changed for {', '.join(needs_rekey)}: run `hydradeploy secrets rekey`",
                err=True,
            )
    if failed:
        raise OperationFailed(
            f"{len(failed)} host(s) not verified ({', '.join(r.host for r in failed)}); nothing written"
        )


@secrets.command(epilog="Example:\n\n\b\n  hydradeploy secrets rekey -i ~/.ssh/id_ed25519")
@_identity_option
@click.option("--force", is_flag=True, help="Re-encrypt every file, even those already right.")
@_output_option
@click.pass_context
def rekey(ctx: click.Context, identities: tuple[Path, ...], force: bool, output: str) -> None:
    """Re-encrypt the files whose recipients changed (hosts added or removed), and
    regenerate secrets/secrets.nix. Needs an identity that can decrypt them."""
    from hydradeploy.secrets.identities import resolve
    from hydradeploy.secrets.rekey import rekey as do_rekey

    ws = _workspace(ctx)
    ids = resolve(identities, required=False)
    results = do_rekey(ws, ids, force=force)
    rows: list[dict[str, Any]] = [
        {
            "file": r.file.rel,
            "status": "rekeyed" if r.changed else "unchanged",
            "added": list(r.diff.missing),
            "removed": list(r.diff.extra),
        }
        for r in results
    ]
    if output == "json":
        _json(rows)
        return
    _table(
        "rekey",
        ["file", "status", "added", "removed"],
        [[r["file"], r["status"], ", ".join(r["added"]), ", ".join(r["removed"])] for r in rows],
    )
    changed = sum(r.changed for r in results)
    click.echo(
        f"{changed} of {len(results)} file(s) re-encrypted; secrets.nix regenerated", err=True
    )


@secrets.command(epilog="Example:\n\n\b\n  hydradeploy secrets edit k3s-token -i ~/.ssh/id_ed25519")
@click.argument("name")
@_identity_option
@click.pass_context
def edit(ctx: click.Context, name: str, identities: tuple[Path, ...]) -> None:
    """Decrypt NAME (k3s-token or a manifest name) into a private temp file, open
    $EDITOR, re-encrypt when changed and valid; the temp file is always wiped."""
    from hydradeploy.secrets.editor import edit as do_edit
    from hydradeploy.secrets.identities import resolve

    ws = _workspace(ctx)
    f = ws.store.find(name)
    changed = do_edit(ws, name, resolve(identities))
    click.echo(f"{ws.store.path(f)}: {'re-encrypted' if changed else 'no changes'}", err=True)


@secrets.command(
    "import",
    epilog="Examples:\n\n\b\n  hydradeploy secrets import\n  hydradeploy secrets import secrets/plain/grafana-admin.yaml",
)
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--keep-plaintext", is_flag=True, help="Do not wipe the imported plaintext files.")
@_output_option
@click.pass_context
def import_(ctx: click.Context, files: tuple[Path, ...], keep_plaintext: bool, output: str) -> None:
    """Encrypt plaintext Secret manifests (secrets/plain/<namespace>/<name>.yaml from the
    converter, or FILES) into secrets/manifests/<namespace>-<name>.yaml.age, then wipe
    the plaintext."""
    from hydradeploy.secrets.importer import import_manifests

    ws = _workspace(ctx)
    done = import_manifests(ws, list(files), keep=keep_plaintext)
    if not done and output == "table":
        click.echo(
            f"nothing to import: {ws.store.plain_dir} holds no <namespace>/<name>.yaml", err=True
        )
        return
    rows = [
        {
            "source": str(d.source),
            "file": d.target.rel,
            "status": "replaced" if d.replaced else "added",
        }
        for d in done
    ]
    if output == "json":
        _json(rows)
        return
    _table(
        "import",
        ["source", "file", "status"],
        [[r["source"], r["file"], r["status"]] for r in rows],
    )
    if not keep_plaintext:
        click.echo(f"{len(rows)} plaintext file(s) wiped", err=True)


@secrets.command(
    epilog="Examples:\n\n\b\n  hydradeploy secrets check\n  hydradeploy secrets check --on-hosts --output json\n  hydradeploy secrets check --on @gpu"
)
@host_selection
@_identity_option
@click.option("--no-scan", is_flag=True, help="Skip the plaintext scan of the repository.")
@click.option(
    "--on-hosts",
    is_flag=True,
    help="Also decrypt each file on every host that needs it, over SSH, with its host key.",
)
@seconds_option("--timeout", 30.0, 600, "Seconds per SSH connection and remote command.", minimum=1)
@_output_option
@click.pass_context
def check(
    ctx: click.Context,
    hosts: tuple[str, ...],
    all_hosts: bool,
    on: tuple[str, ...],
    identities: tuple[Path, ...],
    no_scan: bool,
    on_hosts: bool,
    timeout: float,
    output: str,
) -> None:
    """Fail (exit 1) when a file does not decrypt for a host that needs it, the
    recipients do not match the inventory, or a plaintext secret is in the repository.
    Recipients are read from the age headers; with --identity, files are also
    decrypted. Naming hosts (HOST…, --all, --on) decrypts on those hosts only
    (implies --on-hosts)."""
    from hydradeploy.secrets.check import run_check
    from hydradeploy.secrets.identities import resolve

    ws = _workspace(ctx)
    ids = resolve(identities, required=False) if identities else []
    chosen: set[str] | None = None
    if hosts or all_hosts or on:  # naming hosts means decrypting on them
        on_hosts = True
        chosen = {h.name for h in select(ws.inventory, hosts, all_hosts, on, required=True)}
    with _progress("checking secrets" + (" on the hosts" if on_hosts else "")):
        result = run_check(
            ws, ctx.obj["repo_root"], ids, scan=not no_scan, on_hosts=on_hosts, timeout=timeout,
            hosts=chosen,
        )  # fmt: skip
    if output == "json":
        _json(
            {
                "ok": result.ok,
                "files": [
                    {
                        "file": s.file.rel,
                        "readers": s.readers,
                        "recipients_ok": s.recipients_ok,
                        "decrypted_by": s.decrypted_by,
                    }
                    for s in result.files
                ],
                "findings": [
                    {"path": f.path, "line": f.line, "kind": f.kind, "message": f.message}
                    for f in result.findings
                ],
                "notes": result.notes,
            }
        )
    else:
        if result.files:
            _table(
                "encrypted files",
                ["file", "needed by", "recipients", "decrypted by"],
                [
                    [
                        s.file.rel,
                        ", ".join(s.readers),
                        {True: "ok", False: "WRONG", None: "?"}[s.recipients_ok],
                        ", ".join(s.decrypted_by) or "-",
                    ]
                    for s in result.files
                ],
            )
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        if result.notes and not result.files:
            click.echo(
                "note: no secrets yet: `hydradeploy secrets hostkeys`, then `secrets init`",
                err=True,
            )
        for finding in result.findings:
            loc = f"{finding.path}:{finding.line}" if finding.line else finding.path
            prefix = f"{loc}: " if loc else ""
            click.echo(f"{prefix}{finding.message} [{finding.kind}]")
        if result.ok:
            click.echo("secrets check: ok", err=True)
    if not result.ok:
        raise OperationFailed(f"secrets check: {len(result.findings)} problem(s)")
