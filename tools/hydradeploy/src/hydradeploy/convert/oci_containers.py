"""Front end: NixOS `virtualisation.oci-containers.containers` (as `nix eval --json`
prints it, or hand-written partial objects) → the neutral model.

Option names and meanings follow nixpkgs nixos/modules/virtualisation/oci-containers.nix,
read in the newest stored copy (commit 035a24e7; the nixos-26.05 tree our flake.lock pins,
74cc63f7, is too large to fetch here): `containerOptions` for names, types and defaults,
`mkService` for how each becomes a `podman run`/`docker run` argument.
Keys are checked for type; a wrong type is a one-line error naming file, container, key.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hydradeploy.convert.gpus import extract_gpus
from hydradeploy.convert.model import Container, Source
from hydradeploy.convert.options import OptionError, apply_options, entrypoint_argv, parse_device
from hydradeploy.convert.ports import publish
from hydradeploy.convert.volumes import parse_volume
from hydradeploy.errors import UserError
from hydradeploy.userfiles import read_user_text

NIX_EVAL_TIMEOUT = 900  # a first evaluation of a NixOS system can take minutes

# option -> accepted JSON types (None allowed where the module's type is nullOr); the 26
# options of containerOptions at 035a24e7, none more

_STR_LIST = "list of strings"
_KNOWN: dict[str, str] = {
    "image": "string",
    "imageFile": "nullable",
    "imageStream": "nullable",
    "serviceName": "string",
    "login": "object",
    "cmd": _STR_LIST,
    "labels": "string map",
    "entrypoint": "nullable string",
    "environment": "string map",
    "environmentFiles": _STR_LIST,
    "log-driver": "string",
    "ports": _STR_LIST,
    "user": "nullable string",
    "volumes": _STR_LIST,
    "workdir": "nullable string",
    "dependsOn": _STR_LIST,
    "hostname": "nullable string",
    "preRunExtraOptions": _STR_LIST,
    "extraOptions": _STR_LIST,
    "autoStart": "bool",
    "podman": "nullable object",
    "pull": "string",
    "capabilities": "capability map",
    "devices": _STR_LIST,
    "privileged": "bool",
    "autoRemoveOnStop": "bool",
    "networks": _STR_LIST,
}
_PULL = ("always", "missing", "never", "newer")  # `pull`: types.enum, default "missing"


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "nullable string":
        return value is None or isinstance(value, str)
    if kind == "nullable":
        return value is None or isinstance(value, str)
    if kind == _STR_LIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "string map":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    if kind == "capability map":
        return isinstance(value, dict) and all(
            v is None or isinstance(v, bool) for v in value.values()
        )
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "nullable object":
        return value is None or isinstance(value, dict)
    return False


def load_json_file(path: Path) -> Any:
    text = read_user_text(path, "JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: line {exc.lineno} column {exc.colno}: malformed JSON: {exc.msg}"
        ) from None
    except RecursionError:
        raise UserError(f"{path}: malformed JSON: nested too deeply") from None


def eval_flake(ref: str, timeout: float = NIX_EVAL_TIMEOUT) -> tuple[Any, str]:
    """Run `nix eval --json REF#nixosConfigurations.HOST.config.…containers`; return the
    parsed result and HOST."""
    flake, hash_, host = ref.partition("#")
    if not hash_ or not flake or not host:
        raise UserError(f"--flake {ref!r}: want REF#HOST, for example .#hydra-ai")
    nix = shutil.which("nix")
    if nix is None:
        raise UserError("--flake: `nix` is not on PATH; install Nix or pass --json FILE")
    attr = f"{flake}#nixosConfigurations.{host}.config.virtualisation.oci-containers.containers"
    argv = [nix, "--extra-experimental-features", "nix-command flakes", "eval", "--json", attr]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise UserError(f"--flake {ref}: nix eval did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error:")]
        reason = errors[-1] if errors else lines[-1] if lines else f"exit {proc.returncode}"
        raise UserError(f"--flake {ref}: nix eval failed: {reason} (ran: {shlex.join(argv[1:])})")
    try:
        return json.loads(proc.stdout), host
    except json.JSONDecodeError as exc:
        raise UserError(f"--flake {ref}: nix eval printed malformed JSON: {exc.msg}") from None


def load_podman(data: Any, source_file: str, host: str | None) -> Source:
    if not isinstance(data, dict):
        raise UserError(
            f"{source_file}: top level must be an object of containers (name → options), "
            f"got {type(data).__name__}"
        )
    containers = []
    for name in sorted(data):
        spec = data[name]
        where = f"{source_file}: container {name!r}"
        if not isinstance(spec, dict):
            raise UserError(f"{where}: must be an object of options, got {type(spec).__name__}")
        containers.append(_container(name, spec, source_file, where))
    names = set(data)
    for c in containers:
        # dependsOn names systemd units of other containers; one outside this set (a
        # network-creating container, another host's) orders nothing in the cluster.
        # (The module itself reads them with getAttrs from cfg.containers, so `nix eval`
        # of such a host fails; only hand-written objects get here.)
        outside = [d for d in c.depends_on if d not in names]
        if outside:
            c.note(
                "lost",
                "dependsOn",
                f"{outside}: not among the converted containers; start order on them not kept",
            )
            c.depends_on = [d for d in c.depends_on if d in names]
    return Source("podman", [source_file], containers, host=host)


def _container(name: str, spec: dict[str, Any], source_file: str, where: str) -> Container:
    for key, value in spec.items():
        kind = _KNOWN.get(key)
        if kind is not None and not _type_ok(kind, value):
            raise UserError(f"{where}: key {key!r}: must be a {kind}, got {json.dumps(value)[:60]}")
    c = Container(source_name=name, source_file=source_file)
    for key in sorted(set(spec) - set(_KNOWN)):
        c.note("lost", key, f"unknown option {key!r} ignored")
    image = spec.get("image")
    if not image:
        raise UserError(f"{where}: key 'image': missing (every container needs an image)")
    c.image = image
    try:
        _apply(c, spec)
    except (OptionError, ValueError) as exc:
        raise UserError(f"{where}: {exc}") from None
    extract_gpus(c)
    return c


def _with_podman(spec: dict[str, Any]) -> bool:
    """`podman` is null only with the docker backend (oci-containers.nix `podman = mkIf
    (cfg.backend == "podman") { }`, 035a24e7); `backend` defaults to podman from
    stateVersion 22.05, so a hand-written object without the key means podman."""
    return "podman" not in spec or spec["podman"] is not None


def _apply(c: Container, spec: dict[str, Any]) -> None:
    if spec.get("imageFile") or spec.get("imageStream"):
        c.image_preloaded = True
    pull = spec.get("pull")
    if pull is not None:
        if pull not in _PULL:
            raise ValueError(f"key 'pull': {pull!r} is not one of {', '.join(_PULL)}")
        c.pull = pull
    login = spec.get("login") or {}
    if login.get("registry") or login.get("username"):
        c.registry_login = login.get("registry") or "docker.io"
    if spec.get("entrypoint"):
        # the module passes `--entrypoint=${escapeShellArg entrypoint}` (nixpkgs
        # oci-containers.nix mkService, 035a24e7); podman parses a JSON array there
        c.entrypoint = entrypoint_argv(spec["entrypoint"], podman=_with_podman(spec))
    if spec.get("cmd"):
        c.cmd = tuple(spec["cmd"])
    c.environment = dict(spec.get("environment") or {})
    c.environment_files = list(spec.get("environmentFiles") or [])
    for i, p in enumerate(spec.get("ports") or []):
        try:
            ports, notes = publish(p)
        except ValueError as exc:
            raise ValueError(f"key 'ports'[{i}]: {p!r}: {exc}") from None
        c.ports.extend(ports)
        for note in notes:
            c.note("changed", "ports", note)
    for i, v in enumerate(spec.get("volumes") or []):
        try:
            mount, notes = parse_volume(v)
        except ValueError as exc:
            raise ValueError(f"key 'volumes'[{i}]: {exc}") from None
        c.mounts.append(mount)
        for n in notes:
            c.note("lost", "volumes", n)
    for i, d in enumerate(spec.get("devices") or []):
        try:
            c.devices.append(parse_device(d))
        except ValueError as exc:
            raise ValueError(f"key 'devices'[{i}]: {exc}") from None
    c.user = spec.get("user")
    c.workdir = spec.get("workdir")
    c.hostname = spec.get("hostname")
    if c.hostname:
        c.aliases.append((c.hostname.split(".")[0], "hostname"))
    c.labels = dict(spec.get("labels") or {})
    c.depends_on = list(spec.get("dependsOn") or [])
    c.privileged = bool(spec.get("privileged", False))
    for cap, on in sorted((spec.get("capabilities") or {}).items()):
        if on is True:
            c.cap_add.append(cap.upper().removeprefix("CAP_"))
        elif on is False:
            c.cap_drop.append(cap.upper().removeprefix("CAP_"))
    # mkService: capabilities true → --cap-add, false → --cap-drop, null → neither;
    # autoStart only adds wantedBy multi-user.target
    if spec.get("autoStart") is False:
        c.replicas = 0
        c.note("changed", "autoStart", "autoStart = false: replicas 0; scale up to start it")
    if spec.get("networks"):
        c.note(
            "lost",
            "networks",
            f"networks {spec['networks']}: every pod shares the flat cluster network; reach others by Service name",
        )
    if spec.get("preRunExtraOptions"):
        c.note(
            "lost",
            "preRunExtraOptions",
            f"{spec['preRunExtraOptions']}: options of the engine itself, not of the container",
        )
    log_driver = spec.get("log-driver")
    if log_driver not in (None, "journald"):
        c.note(
            "lost",
            "log-driver",
            f"log-driver {log_driver!r}: the kubelet keeps container logs (kubectl logs)",
        )
    podman = spec.get("podman")
    if isinstance(podman, dict) and podman.get("user", "root") != "root":
        c.note(
            "changed",
            "podman.user",
            f"rootless podman as {podman['user']!r}: runs under the kubelet now; set runAsUser if the image needs it",
        )
    if isinstance(podman, dict) and podman.get("sdnotify", "conmon") == "healthy":
        c.note(
            "converted",
            "podman.sdnotify",
            "sdnotify = healthy: the health check becomes the readiness probe",
        )
    try:
        apply_options(c, list(spec.get("extraOptions") or []), podman=_with_podman(spec))
    except OptionError as exc:
        raise ValueError(f"key {exc}") from None
