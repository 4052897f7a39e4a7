"""`hydradeploy convert podman-to-k8s | compose-to-k8s`.

Heavy modules (yaml, deepdiff, rich) load inside the commands so `hydradeploy --help`
stays fast.
"""

from __future__ import annotations

import gc
import re
import sys
from pathlib import Path
from typing import Any

import click

from hydradeploy.cli_options import complete_host_name
from hydradeploy.errors import OperationFailed, UserError

QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?\Z")


def _repo_root() -> Path:
    from hydradeploy.cli import repo_root

    return repo_root()


def _repository() -> Path | None:
    """The hydra repository we are converting inside ($HYDRA_ROOT or a parent holding
    hosts/inventory.toml), or None: then nothing may default to the working directory."""
    root = _repo_root()
    import os

    if os.environ.get("HYDRA_ROOT") or (root / "hosts" / "inventory.toml").is_file():
        return root
    return None


def _output_dirs(out: Path | None, secrets_dir: Path | None) -> tuple[Path, Path]:
    """--out and where plaintext Secrets go: the repository's k8s/converted/ and
    secrets/plain/ only when converting inside the repository (and into it); otherwise
    --out is required and Secrets go beside it (`<out>-secrets/`) unless --secrets-dir."""
    repo = _repository()
    if out is None:
        if repo is None:
            raise UserError(
                f"not inside a hydra repository (no hosts/inventory.toml above {Path.cwd()}): pass --out DIR"
            )
        out = repo / "k8s" / "converted"
    if secrets_dir is None:
        inside = repo is not None and out.resolve().is_relative_to(repo.resolve())
        secrets_dir = (
            repo / "secrets" / "plain"
            if inside and repo is not None
            else out.with_name(out.name + "-secrets")
        )
    return out, secrets_dir


def _common(f: Any) -> Any:
    options = [
        click.option(
            "--namespace",
            "namespace",
            default=None,
            help="Namespace of the objects (folder under --out).",
        ),
        click.option(
            "--out",
            "out",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Output folder (default: k8s/converted/ of the repository; required outside one).",
        ),
        click.option(
            "--check",
            is_flag=True,
            help="Write nothing; exit 1 with a semantic diff when the files on disk differ.",
        ),
        click.option(
            "--report",
            "report",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Write a JSON report of every decision to FILE.",
        ),
        click.option(
            "--secrets-dir",
            "secrets_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Where plaintext Secret manifests go (default: secrets/plain/ of the repository when --out is inside it, else OUT-secrets/ beside --out).",
        ),
        click.option(
            "--storage-class",
            default=None,
            help="StorageClass of claims for named volumes (default: the cluster's).",
        ),
        click.option(
            "--volume-size",
            "volume_size",
            multiple=True,
            metavar="[NAME=]SIZE",
            help="Size of the claims of named volumes (default 10Gi); NAME=SIZE for one volume (repeatable).",
        ),
        click.option(
            "--allow-empty",
            is_flag=True,
            help="Let a conversion that finds no containers remove the files its source wrote before.",
        ),
        click.option("--quiet", "-q", is_flag=True, help="No summary on stderr."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


class _OneLineErrors(click.Group):
    """A user error must stay one line, whatever odd text (a key with a newline) it quotes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            message = str(exc)
            if "\n" in message or "\r" in message:
                raise UserError(message.replace("\r", "\\r").replace("\n", "\\n")) from None
            raise


@click.group(cls=_OneLineErrors)
@click.pass_context
def convert(ctx: click.Context) -> None:
    """Convert container definitions into k3s auto-deploy manifests."""
    # Conversion allocates many small objects and frees them only at exit; the cyclic
    # garbage collector would rescan the growing heap again and again (superlinear time:
    # a third of the input's parsing time at 10,000 containers), from the input on.
    # Switched back on when the command ends, for callers that go on in this process.
    if gc.isenabled():
        gc.disable()
        ctx.call_on_close(gc.enable)


@convert.command("podman-to-k8s")
@click.option(
    "--json",
    "json_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON of `nix eval --json .#nixosConfigurations.HOST.config.virtualisation.oci-containers.containers`.",
)
@click.option(
    "--flake",
    "flake",
    default=None,
    metavar="REF#HOST",
    help="Run that nix eval on REF#HOST yourself.",
)
@click.option(
    "--host",
    "host",
    default=None,
    shell_complete=complete_host_name,
    help="Node that holds the bind-mounted data (default: HOST of --flake).",
)
@_common
@click.pass_context
def podman_to_k8s(
    ctx: click.Context,
    /,
    json_file: Path | None,
    flake: str | None,
    host: str | None,
    **common: Any,
) -> None:
    """Convert NixOS virtualisation.oci-containers to k3s manifests.

    \b
    Example:
      hydradeploy convert podman-to-k8s --flake .#example-podman-host --host hydra-ai
      hydradeploy convert podman-to-k8s --json containers.json --host hydra-ai --check
    Rules and the report's words: docs/converter.md.
    """
    from hydradeploy.convert import oci_containers

    if (json_file is None) == (flake is None):
        raise UserError("podman-to-k8s: give exactly one of --json FILE or --flake REF#HOST")
    if json_file is not None:
        data = oci_containers.load_json_file(json_file)
        source_file = _display_path(json_file)
    else:
        assert flake is not None
        data, flake_host = oci_containers.eval_flake(flake)
        host = host or flake_host
        source_file = flake
    source = oci_containers.load_podman(data, source_file, host)
    del data  # the parsed JSON (a fifth of the memory at 10,000 containers) is in `source` now
    namespace = common.pop("namespace") or (host or "default")
    _run(ctx, source, namespace, volume_root="/var/lib/containers/storage/volumes", **common)


@convert.command("compose-to-k8s")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--host",
    "host",
    default=None,
    shell_complete=complete_host_name,
    help="Node that holds the bind-mounted data.",
)
@click.option(
    "--project-dir",
    default=None,
    help="Folder the stack ran from on the host; relative bind mounts resolve against it (default: the first file's folder).",
)
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    help="Enable services of this compose profile (repeatable).",
)
@click.option(
    "--home",
    "home",
    default=None,
    metavar="DIR",
    help="What ~ in host paths stands for on the node (default: your $HOME, as compose does).",
)
@click.option(
    "--env-file",
    "env_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Variables for interpolation (default: .env beside the first file).",
)
@_common
@click.pass_context
def compose_to_k8s(
    ctx: click.Context,
    /,
    files: tuple[Path, ...],
    host: str | None,
    project_dir: str | None,
    profiles: tuple[str, ...],
    env_file: Path | None,
    home: str | None,
    **common: Any,
) -> None:
    """Convert docker-compose files to k3s manifests.

    \b
    Example:
      hydradeploy convert compose-to-k8s docker-compose.yml --host hydra-ai \\
          --project-dir /srv/ai-system --report report.json
    Rules and the report's words: docs/converter.md.
    """
    import os

    from hydradeploy.convert import compose

    if home is not None and not home.startswith("/"):
        raise UserError(f"--home {home!r}: must be an absolute path on the node")
    source = compose.load_compose(
        list(files),
        environ=dict(os.environ),
        env_file=env_file,
        profiles=set(profiles),
        host=host,
        display=_display_path,
        project_dir=project_dir,
        home=home,
    )
    if project_dir is not None and not project_dir.startswith("/"):
        raise UserError(f"--project-dir {project_dir!r}: must be an absolute path on the host")
    namespace = common.pop("namespace") or (source.project or "default")
    _run(ctx, source, namespace, volume_root="/var/lib/docker/volumes", **common)


def _display_path(path: Path) -> str:
    """Paths inside the repository are written relative to it, so annotations (and with
    them --check) do not depend on where the repository is checked out."""
    try:
        return path.resolve().relative_to(_repo_root().resolve()).as_posix()
    except ValueError:
        return str(path)


def _gpu_counter(ctx: click.Context, host: str | None) -> tuple[Any, list[str]]:
    """vendor -> GPU count of `host` from the inventory, loaded only when asked."""
    warnings: list[str] = []
    cache: dict[str, dict[str, int] | None] = {}

    def count(vendor: str) -> int | None:
        if host is None:
            return None
        if "gpus" not in cache:
            cache["gpus"] = _host_gpus(ctx, host, warnings)
        gpus = cache["gpus"] or {}
        return gpus.get(f"{vendor}.com/gpu")

    return count, warnings


def _host_gpus(ctx: click.Context, host: str, warnings: list[str]) -> dict[str, int] | None:
    from hydradeploy.inventory import load_inventory

    path: Path = (ctx.obj or {}).get("inventory_path") or (
        _repo_root() / "hosts" / "inventory.toml"
    )
    if not path.is_file():
        warnings.append(f"inventory {path} not found: GPU count of {host} unknown")
        return None
    try:
        inv = load_inventory(path)
    except UserError as exc:
        warnings.append(f"inventory not usable ({exc}): GPU count of {host} unknown")
        return None
    if host not in inv.hosts:
        warnings.append(f"host {host!r} is not in inventory {path}: GPU count unknown")
        return None
    return inv.hosts[host].gpu_resources()


def _usable_inventory(ctx: click.Context) -> tuple[Path, Any] | None:
    """The inventory in use (--inventory, else the repository's) and its contents; None
    when there is none or it does not load (the GPU lookup already warned, when it
    mattered)."""
    from hydradeploy.inventory import load_inventory

    path: Path = (ctx.obj or {}).get("inventory_path") or (
        _repo_root() / "hosts" / "inventory.toml"
    )
    if not path.is_file():
        return None
    try:
        return path, load_inventory(path)
    except UserError:
        return None


def _inventory_problems(ctx: click.Context, source: Any, conv: Any) -> list[str]:
    """What the cluster described by the inventory (if there is one) could not run:
    pods pinned to a name that is no k3s node (hosts and microVM guests) stay Pending,
    LoadBalancer Services stay Pending when the inventory disables k3s's ServiceLB, and
    a ROCm container needs the host's HSA_OVERRIDE_GFX_VERSION (seed mistake 7)."""
    host: str | None = source.host
    pinned = host is not None and any(r.pinned_node is not None for r in conv.containers)
    balanced = any(r.load_balancer for r in conv.containers)
    rocm = [c for c in source.containers if any(g.vendor == "amd" for g in c.gpus)]
    if not (pinned or balanced or (rocm and host)):
        return []
    found = _usable_inventory(ctx)
    if found is None:
        return []
    path, inv = found
    problems = []
    if pinned and host not in inv.expected_nodes():
        problems.append(
            f"--host {host!r} is not a k3s node in {path}: pods pinned to it stay Pending until a node of that name joins"
        )
    if balanced and "servicelb" in inv.cluster.disable:
        problems.append(
            f"{path} disables servicelb: the LoadBalancer Services (*-lb) stay Pending; enable it or publish in 30000-32767 (NodePort)"
        )
    gfx = inv.hosts[host].rocm_gfx_version if host is not None and host in inv.hosts else None
    for c in rocm if gfx else []:
        have = c.environment.get("HSA_OVERRIDE_GFX_VERSION")
        if have != gfx:
            problems.append(
                f"{c.source_name}: HSA_OVERRIDE_GFX_VERSION is {have or 'not set'}, host {host} needs {gfx} (its rocm_gfx_version)"
            )
    return problems


def _volume_sizes(values: tuple[str, ...], source: Any) -> tuple[str, dict[str, str]]:
    """`--volume-size 20Gi` (every claim) and `--volume-size NAME=SIZE` (one volume)."""
    default, sizes = "10Gi", {}
    volumes = {m.source for c in source.containers for m in c.mounts if m.kind == "volume"}
    for value in values:
        name, eq, size = value.rpartition("=")
        if not QUANTITY.match(size):
            raise UserError(
                f"--volume-size {value!r}: want a Kubernetes quantity such as 10Gi or 500Mi"
            )
        if not eq:
            default = size
        elif name not in volumes:
            raise UserError(
                f"--volume-size {value!r}: no named volume {name!r} in {', '.join(source.files)}"
                + (f" (volumes: {', '.join(sorted(volumes))})" if volumes else "")
            )
        else:
            sizes[name] = size
    return default, sizes


def _cluster_fit(
    ctx: click.Context, out: Path, generated: dict[str, list[dict[str, Any]]], label: str
) -> list[str]:
    """k8s-check's cluster-fit checks over the output, with the repository's k8s/ tree
    as context when the output lands inside it (cluster_fit.py)."""
    from hydradeploy.convert import cluster_fit

    found = _usable_inventory(ctx)
    if found is None:
        return []
    _path, inv = found
    repo = _repository()
    k8s = repo / "k8s" if repo is not None else None
    # output inside k8s/: the whole tree is its context; elsewhere (a trial run) the
    # hand-written part (platform, apps), not the converted outputs it would not join
    inside = k8s is not None and out.resolve().is_relative_to(k8s.resolve())
    skip = None if inside or k8s is None else k8s / "converted"
    return cluster_fit.problems(out, generated, label, inv, k8s, skip)


def _run(
    ctx: click.Context,
    source: Any,
    namespace: str,
    *,
    volume_root: str,
    out: Path | None,
    check: bool,
    report: Path | None,
    secrets_dir: Path | None,
    storage_class: str | None,
    volume_size: tuple[str, ...],
    allow_empty: bool,
    quiet: bool,
) -> None:
    from hydradeploy.convert import ownership, write, yaml_out
    from hydradeploy.convert.emit import EmitOptions
    from hydradeploy.convert.emit import convert as emit
    from hydradeploy.convert.model import Note
    from hydradeploy.convert.report import build_report, print_summary, write_report
    from hydradeploy.kube_names import is_dns1123_label
    from hydradeploy.manifests.read_set import strip_unread

    if not (is_dns1123_label(namespace) and "\n" not in namespace):
        raise UserError(
            f"--namespace {namespace!r}: must be a DNS-1123 label (lowercase letters, digits, '-')"
        )
    default_size, sizes = _volume_sizes(volume_size, source)
    out, secrets_dir = _output_dirs(out, secrets_dir)
    gpu_count, inv_warnings = _gpu_counter(ctx, source.host)
    opts = EmitOptions(
        namespace=namespace,
        host=source.host,
        storage_class=storage_class,
        volume_size=default_size,
        volume_sizes=sizes,
        gpu_count=gpu_count,
        volume_root=volume_root,
    )
    label = ", ".join(source.files)
    # each file is written (or compared) as soon as it is built, then dropped
    # only this source's files are compared, replaced or removed (ownership.py)
    checker = None
    if check:
        # deepdiff costs ~50 ms to import: only --check needs it
        from hydradeploy.convert import diff

        checker = diff.DriftCheck(out, owner=label)
    tree = None if check else write.StagedTree(out, owner=label)
    if checker is not None:
        checker.own(namespace)
    if tree is not None and not source.containers and not allow_empty:
        mine = tree.own_files(namespace)
        if mine:
            raise UserError(
                f"{label}: no containers to convert; that would remove its {len(mine)} file(s) under {out / namespace} (pass --allow-empty to do so)"
            )

    generated: dict[str, list[dict[str, Any]]] = {}

    def sink(rel: str, docs: list[dict[str, Any]]) -> None:
        if checker is not None:
            checker.file(rel, docs)
        elif tree is not None:
            tree.add(rel, write.dump_documents(docs, ownership.label_for(rel, label)))
        # written (or compared): the cluster-fit checks need only what they read of it
        # (10,000 containers held whole were most of the memory)
        for doc in docs:
            strip_unread(doc)
        generated[rel] = docs

    try:
        if quiet or not sys.stderr.isatty():
            conv = emit(source, opts, on_file=sink)
        else:
            from rich.console import Console

            with Console(stderr=True).status(f"converting {len(source.containers)} container(s)…"):
                conv = emit(source, opts, on_file=sink)
    except BaseException:
        if tree is not None:
            tree.abort()
        raise
    conv.notes.extend(Note("warning", "inventory", w) for w in inv_warnings)
    yaml_out.scalar.cache_clear()  # every file is written: its 65,536 strings go before the checks
    conv.notes.extend(
        Note("warning", "cluster-fit", p) for p in _cluster_fit(ctx, out, generated, label)
    )
    generated.clear()
    conv.notes.extend(
        Note("warning", "inventory", p) for p in _inventory_problems(ctx, source, conv)
    )
    if checker is not None:
        lines = checker.finish()
        if report:
            write_report(report, build_report(source, conv, out, secrets_dir, []))
        if lines:
            click.echo(f"drift in {out} (what `convert` would change):", err=True)
            for line in lines:
                click.echo(line, err=True)
            raise OperationFailed("")
        if not quiet:
            click.echo(f"{out}: up to date ({len(conv.paths)} file(s))", err=True)
        return
    assert tree is not None
    tree.own(namespace)
    secret_text = {path: write.dump_documents([doc], label) for path, doc in conv.secrets.items()}
    try:
        if secret_text:
            write.write_secrets(secrets_dir, secret_text)
    except BaseException:
        tree.abort()
        raise
    if secret_text:
        conv.notes.append(
            Note(
                "action",
                "secrets",
                f"{len(secret_text)} Secret manifest(s) written under {secrets_dir} (mode 0600, not under k8s/): run `hydradeploy secrets import` to encrypt them",
            )
        )
    tree.commit()
    if report:
        write_report(report, build_report(source, conv, out, secrets_dir, sorted(secret_text)))
    if not quiet:
        print_summary(conv, "converted", str(out / namespace))
