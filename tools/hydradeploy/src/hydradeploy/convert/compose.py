"""Front end: docker-compose files (compose specification) → the neutral model.

Reads the files as YAML 1.2 would (`22:22` stays a string, `yes` stays a string),
interpolates variables from the environment and `.env`, merges several files like
`docker compose -f a -f b`, resolves simple `extends`, and filters by profile.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml

from hydradeploy.convert import shellwords
from hydradeploy.convert.compose_keys import unknown_key_error
from hydradeploy.convert.gpus import extract_gpus, merge_gpu_requests
from hydradeploy.convert.interpolation import InterpolationError, interpolate_tree, parse_env_file
from hydradeploy.convert.model import Container, GpuRequest, Healthcheck, Note, Source
from hydradeploy.convert.names import sanitize
from hydradeploy.convert.options import OptionError, add_tmpfs, parse_device
from hydradeploy.convert.ports import parse_port, publish
from hydradeploy.convert.units import cpu_quantity, duration_seconds, size_quantity
from hydradeploy.convert.volumes import mount_for, parse_tmpfs, parse_volume
from hydradeploy.errors import UserError
from hydradeploy.userfiles import read_user_text

try:
    _BaseLoader: Any = yaml.CSafeLoader
except AttributeError:
    _BaseLoader = yaml.SafeLoader


class ComposeLoader(_BaseLoader):  # type: ignore[misc]
    """YAML 1.2 core scalars: no sexagesimal ints (`22:22`), no yes/no/on/off booleans;
    a key twice in one mapping is an error (YAML 1.2 requires unique keys, and docker
    compose refuses such files) instead of PyYAML's silent last-one-wins."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                    key_node, yaml.ScalarNode
                ):
                    continue
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key_node.value!r} (docker compose refuses it)",
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


class _Reset:
    """`!reset`: the key (or item) is removed from what earlier files set."""

    def __repr__(self) -> str:
        return "!reset"


RESET = _Reset()


class _OverrideDict(dict):  # type: ignore[type-arg]
    """`!override` of a mapping: replaces the earlier value instead of merging into it."""


class _OverrideList(list):  # type: ignore[type-arg]
    """`!override` of a sequence: replaces the earlier value instead of appending."""


def _construct_reset(loader: Any, node: Any) -> _Reset:
    return RESET


def _construct_override(loader: Any, node: Any) -> Any:
    if isinstance(node, yaml.MappingNode):
        return _OverrideDict(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return _OverrideList(loader.construct_sequence(node, deep=True))
    return loader.construct_scalar(node)  # a scalar replaces anyway


# compose-spec 13-merge.md "Reset value" and "Replace value" (170098ba): the YAML tags
# `!reset` and `!override`
ComposeLoader.add_constructor("!reset", _construct_reset)
ComposeLoader.add_constructor("!override", _construct_override)


def _drop_resets(value: Any) -> Any:
    """What is left once every `!reset` has removed its key or item."""
    if isinstance(value, dict):
        return {k: _drop_resets(v) for k, v in value.items() if v is not RESET}
    if isinstance(value, list):
        return [_drop_resets(v) for v in value if v is not RESET]
    return value


ComposeLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")
    ]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)

_TOP_LEVEL = {"name", "version", "services", "volumes", "secrets", "configs", "networks"}
_CONCAT = (
    "ports",
    "expose",
    "dns",
    "cap_add",
    "cap_drop",
    "devices",
    "volumes",
    "env_file",
    "extra_hosts",
    "tmpfs",
    "secrets",
    "configs",
    "dns_search",
)
_IGNORED = {"logging", "stdin_open", "tty", "x-", "labels_file"}
# compose-spec 05-services.md pull_policy (170098ba): always, never, missing (the default;
# `if_not_present` its alias), build; daily, weekly, every_<duration> check the registry
# on a schedule (→ always, reported)
_PULL = {
    "always": "always",
    "never": "never",
    "missing": "missing",
    "if_not_present": "missing",
    "build": "missing",
}


class _Err(ValueError):
    """A problem with one key of one service; the caller adds file and service."""


def _read(path: Path) -> Any:
    text = read_user_text(path, "compose file")
    try:
        return yaml.load(text, Loader=ComposeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        raise UserError(f"{path}: {where}malformed YAML: {exc.problem or exc}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise UserError(
            f"{path}: malformed YAML: {str(exc).splitlines()[0] if str(exc) else 'nested too deeply'}"
        ) from None


def _check_keys(doc: dict[str, Any], path: Path) -> None:
    """Unknown keys are errors, as docker compose validates each file against the
    compose-spec schema (see compose_keys.py): one line naming file, service and key."""

    def check(where: str, obj: Any, label: str) -> None:
        if not isinstance(obj, dict):
            return
        for key in obj:
            err = unknown_key_error(where, key)
            if err:
                raise UserError(f"{path}: {label}{err}")

    for key, value in doc.items():
        if unknown_key_error("", key) and isinstance(value, dict) and "image" in value:
            # compose file format 1: services at the top level; docker compose v2's
            # schema has no such keys either
            raise UserError(
                f"{path}: top-level key {key!r} looks like a service of a version 1 file: put services under `services:`"
            )
    check("", doc, "")
    for section in ("volumes", "networks", "secrets", "configs"):
        items = doc.get(section)
        for name, spec in items.items() if isinstance(items, dict) else ():
            check(f"{section}.*", spec, f"{section} {name!r}: ")
    services = doc.get("services")
    for name, spec in services.items() if isinstance(services, dict) else ():
        if not isinstance(spec, dict):
            continue
        label = f"service {name!r}: "
        check("services.*", spec, label)
        check("services.*.healthcheck", spec.get("healthcheck"), label + "healthcheck: ")
        deploy = spec.get("deploy")
        check("services.*.deploy", deploy, label + "deploy: ")
        res = deploy.get("resources") if isinstance(deploy, dict) else None
        check("services.*.deploy.resources", res, label + "deploy.resources: ")
        if isinstance(res, dict):
            check("services.*.deploy.resources.limits", res.get("limits"), label + "limits: ")
            rsv = res.get("reservations")
            check("services.*.deploy.resources.reservations", rsv, label + "reservations: ")
            devices = rsv.get("devices") if isinstance(rsv, dict) else None
            for dev in devices if isinstance(devices, list) else ():
                check(
                    "services.*.deploy.resources.reservations.devices[]",
                    dev,
                    label + "reservations.devices: ",
                )
        for key in ("ports", "volumes"):
            items = spec.get(key)
            for item in items if isinstance(items, list) else ():
                check(f"services.*.{key}[]", item, f"{label}{key}: ")
                if key == "volumes" and isinstance(item, dict):
                    for sub in ("bind", "volume", "tmpfs", "image"):
                        check(
                            f"services.*.volumes[].{sub}", item.get(sub), f"{label}volumes.{sub}: "
                        )
        for key in ("depends_on", "networks"):
            items = spec.get(key)
            for other, sub in items.items() if isinstance(items, dict) else ():
                check(f"services.*.{key}.*", sub, f"{label}{key} {other!r}: ")


def _normalise_mapping(value: Any, key: str) -> dict[str, Any]:
    """environment / labels / extra_hosts / sysctls: list of `k=v` (or `k:v`) or a map."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for item in value:
            if not isinstance(item, str | int | float) or isinstance(item, bool):
                raise _Err(f"key {key!r}: item {item!r} is not a string")
            text = str(item)
            sep = "=" if "=" in text or key != "extra_hosts" else ":"
            k, has, v = text.partition(sep)
            out[k] = v if has else None
        return out
    raise _Err(f"key {key!r}: must be a list or a map, got {type(value).__name__}")


# compose-spec 13-merge.md "Unique resources" (170098ba): volumes, secrets and configs are
# unique by target; an entry of the later file replaces (a mapping: merges into) the
# earlier one with that target, others are appended
_BY_TARGET = ("volumes", "secrets", "configs")


def _target_of(item: Any) -> Any:
    if isinstance(item, dict):
        return item.get("target") or item.get("source")
    if isinstance(item, str):
        parts = item.split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    return repr(item)


def _merge_by_target(base: list[Any], override: list[Any]) -> list[Any]:
    # a secret's or config's short form is its name, which is also its default target
    out = list(base)
    index = {_target_of(v): i for i, v in enumerate(out)}
    for item in override:
        i = index.get(_target_of(item))
        if i is None:
            index[_target_of(item)] = len(out)
            out.append(item)
        elif isinstance(out[i], dict) and isinstance(item, dict):
            out[i] = _merge(out[i], item)
        else:
            out[i] = item
    return out


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if value is RESET:
            out.pop(key, None)
        elif isinstance(value, _OverrideDict | _OverrideList):
            out[key] = value
        elif key in ("environment", "labels", "extra_hosts", "sysctls") and key in out:
            out[key] = {**_normalise_mapping(out[key], key), **_normalise_mapping(value, key)}
        elif key in _BY_TARGET and isinstance(out.get(key), list) and isinstance(value, list):
            out[key] = _merge_by_target(out[key], value)
        elif key in _CONCAT and isinstance(out.get(key), list) and isinstance(value, list):
            out[key] = out[key] + [v for v in value if v not in out[key]]
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# compose-go loader/interpolate.go interpolateTypeCastMapping (e70e961): strings at these
# service paths are cast with toBoolean after interpolation, so `privileged: "true"` and
# `read_only: ${RO:-false}` are booleans
_BOOL_KEYS = ("init", "privileged", "read_only", "stdin_open", "tty", "oom_kill_disable")


def _to_boolean(value: Any, key: str) -> Any:
    """loader/interpolate.go toBoolean: true/false, and y/yes/on, n/no/off (any case)."""
    if not isinstance(value, str):
        return value
    low = value.lower()
    if low in ("true", "y", "yes", "on"):
        return True
    if low in ("false", "n", "no", "off"):
        return False
    raise _Err(f"key {key!r}: invalid boolean: {value}")


def _cast_booleans(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    out = dict(spec)
    for key in _BOOL_KEYS:
        if key in out:
            out[key] = _to_boolean(out[key], key)
    hc = out.get("healthcheck")
    if isinstance(hc, dict) and "disable" in hc:
        out["healthcheck"] = {**hc, "disable": _to_boolean(hc["disable"], "healthcheck.disable")}
    deps = out.get("depends_on")
    if isinstance(deps, dict):
        out["depends_on"] = {
            dep: {
                k: _to_boolean(v, f"depends_on.{dep}.{k}") if k in ("required", "restart") else v
                for k, v in cond.items()
            }
            if isinstance(cond, dict)
            else cond
            for dep, cond in deps.items()
        }
    vols = out.get("volumes")
    if isinstance(vols, list):
        out["volumes"] = [
            {**v, "read_only": _to_boolean(v["read_only"], "volumes.read_only")}
            if isinstance(v, dict) and "read_only" in v
            else v
            for v in vols
        ]
    return out


def _normal_project_name(name: str) -> str:
    """compose-go loader/loader.go NormalizeProjectName (e70e961): lower case, keep only
    [a-z0-9_-], trim leading `_` and `-` (`My.App` → `myapp`)."""
    kept = "".join(re.findall(r"[a-z0-9_-]", name.lower()))
    return kept.lstrip("_-")


def load_compose(
    files: list[Path],
    environ: dict[str, str],
    env_file: Path | None = None,
    profiles: set[str] | None = None,
    host: str | None = None,
    display: Callable[[Path], str] = str,
    project_dir: str | None = None,
    home: str | None = None,
) -> Source:
    """`home`: what `~` in host paths stands for (the node user's home; default $HOME of
    the invoking user, as compose itself does)."""
    if not files:
        raise UserError("compose-to-k8s: give at least one compose file")
    compose_dir = files[0].resolve().parent
    env: dict[str, str] = {}
    dotenv = env_file or compose_dir / ".env"
    if env_file is not None or dotenv.is_file():
        try:
            text = dotenv.read_text(encoding="utf-8")
            # dotenv/env.go GetEnvFromFile: `${VAR}` in .env reads the shell first
            env.update(parse_env_file(text, str(dotenv), environ))
        except FileNotFoundError:
            raise UserError(f"--env-file {dotenv}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{dotenv}: cannot read: {exc}") from None
        except InterpolationError as exc:
            raise UserError(str(exc)) from None
    env.update(environ)
    missing: set[str] = set()
    services: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    top: dict[str, dict[str, Any]] = {"volumes": {}, "secrets": {}, "configs": {}}
    project = None
    top_notes: list[Note] = []
    for path in files:
        doc = _read(path)
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise UserError(
                f"{path}: top level must be a mapping with `services`, got {type(doc).__name__}"
            )
        _check_keys(doc, path)
        try:
            doc = interpolate_tree(doc, env, missing)
        except InterpolationError as exc:
            raise UserError(f"{path}: {exc}") from None
        for key in sorted(set(map(str, doc)) - _TOP_LEVEL):
            if not key.startswith("x-"):
                top_notes.append(
                    Note(
                        "lost",
                        key,
                        f"top-level {key!r} not converted"
                        + (" (pass the included files explicitly)" if key == "include" else ""),
                    )
                )
        if doc.get("name") is not None:
            project = str(doc["name"])
        raw_services = doc.get("services") or {}
        if not isinstance(raw_services, dict):
            raise UserError(f"{path}: key 'services': must be a mapping of service name → options")
        for key in ("volumes", "secrets", "configs"):
            section = doc.get(key) or {}
            if not isinstance(section, dict):
                raise UserError(f"{path}: key {key!r}: must be a mapping")
            for name, spec in section.items():
                if spec is RESET:  # `!reset` removes what an earlier file declared
                    top[key].pop(str(name), None)
                    continue
                if spec is not None and not isinstance(spec, dict):
                    raise UserError(f"{path}: {key} {name!r}: must be a mapping or empty")
                top[key][str(name)] = spec or {}
        raw_services = {str(k): v for k, v in raw_services.items()}
        for name in [n for n, v in raw_services.items() if v is RESET]:
            del raw_services[name]  # `!reset` removes the service earlier files declared
            services.pop(name, None)
            origin.pop(name, None)
        resolved = _resolve_extends(raw_services, path, {})
        for name, spec in resolved.items():
            services[name] = _merge(services.get(name, {}), spec)
            origin.setdefault(name, display(path))
    services = {name: _drop_resets(spec) for name, spec in services.items()}
    top = {key: _drop_resets(section) for key, section in top.items()}
    # project name precedence as compose-go v2 cli/options.go withNamePrecedenceLoad
    # (e70e961): COMPOSE_PROJECT_NAME (shell over .env, cli.WithDotEnv merges without
    # overriding), then `name:` of the files, then the folder name
    if env.get("COMPOSE_PROJECT_NAME"):
        project = env["COMPOSE_PROJECT_NAME"]
        # set from outside it must already be normal (loader.go projectName:
        # InvalidProjectNameErr); `name:` and the folder name are normalised instead
        if _normal_project_name(project) != project:
            raise UserError(
                f"COMPOSE_PROJECT_NAME {project!r}: invalid project name: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
            )
    project = _normal_project_name(project or "") or _normal_project_name(compose_dir.name)
    source = Source(
        "compose", [display(p) for p in files], [], host=host, project=sanitize(project)
    )
    source.notes.extend(dict.fromkeys(top_notes))  # once, even when several files repeat a key
    source.config_data = _config_data(top["configs"], compose_dir)
    if missing:
        source.notes.append(
            Note(
                "warning",
                "interpolation",
                f"variables not set, replaced by an empty string: {sorted(missing)}",
            )
        )
    host_dir = project_dir or str(compose_dir)
    home_dir = home or environ.get("HOME") or str(Path.home())
    if project_dir is None and any(
        (isinstance(v, str) and v.startswith("."))
        or (isinstance(v, dict) and str(v.get("source", "")).startswith("."))
        for spec in services.values()
        for v in (spec.get("volumes") or [] if isinstance(spec.get("volumes"), list) else [])
    ):
        source.notes.append(
            Note(
                "warning",
                "volumes",
                f"relative bind mounts resolved against {host_dir}; pass --project-dir DIR when the stack ran from another folder on the host",
            )
        )
    # --profile wins; without it COMPOSE_PROFILES (shell or .env, comma-separated) as
    # compose-go v2 cli/options.go WithDefaultProfiles (e70e961); docker/compose
    # pkg/e2e/profiles_test.go TestDotEnvProfileUsage shows .env enabling a profile
    active = set(profiles or ())
    if not active and env.get("COMPOSE_PROFILES"):
        active = {p.strip() for p in env["COMPOSE_PROFILES"].split(",") if p.strip()}
        source.notes.append(
            Note("converted", "profiles", f"profiles {sorted(active)} from COMPOSE_PROFILES")
        )
    for name in sorted(services):
        try:
            spec = services[name] = _cast_booleans(services[name])
        except _Err as exc:
            raise UserError(f"{origin[name]}: service {name!r}: {exc}") from None
        svc_profiles = spec.get("profiles") or []
        # "*" enables every profile: compose-go v2 types/project.go HasProfile (e70e961)
        if svc_profiles and not (set(map(str, svc_profiles)) & active) and "*" not in active:
            source.notes.append(
                Note(
                    "lost",
                    "profiles",
                    f"service {name!r} only runs with profile(s) {sorted(map(str, svc_profiles))}; skipped (pass --profile)",
                )
            )
            continue
        try:
            source.containers.append(
                _service(
                    name,
                    spec,
                    origin[name],
                    host_dir,
                    top,
                    source.project or "default",
                    home_dir,
                    env,
                    compose_dir,
                    source.config_data,
                )
            )
        except _Err as exc:
            raise UserError(f"{origin[name]}: service {name!r}: {exc}") from None
    present = {c.source_name for c in source.containers}
    _links(source, services)
    _network_peers(source, services)
    for c in source.containers:
        optional = _optional_deps(services[c.source_name].get("depends_on"))
        for dep in c.depends_on:
            if dep not in services:
                raise UserError(
                    f"{c.source_file}: service {c.source_name!r}: key 'depends_on': unknown service {dep!r}"
                )
            if dep not in present and dep not in optional:
                # compose-go loader/validate.go (e70e961): a disabled dependency is
                # skipped only when `required: false`; the spec (15-profiles.md) calls
                # such a model invalid
                raise UserError(
                    f"{c.source_file}: service {c.source_name!r}: key 'depends_on': service {dep!r} is not enabled by the active profiles (pass --profile, or mark it required: false)"
                )
        c.depends_on = [d for d in c.depends_on if d in present]
    return source


CONFIGMAP_MAX = 1024 * 1024  # a ConfigMap holds at most 1 MiB (etcd's object limit)


def _config_data(configs: dict[str, dict[str, Any]], compose_dir: Path) -> dict[str, str]:
    """Text of compose configs the converter can read: inline `content`, or a `file`
    beside the compose file (spec 08-configs.md); others stay a kubectl action."""
    out: dict[str, str] = {}
    for name, spec in configs.items():
        if isinstance(spec.get("content"), str):
            out[name] = spec["content"]
            continue
        file = spec.get("file")
        if not isinstance(file, str):
            continue
        path = compose_dir / file
        try:
            if path.is_file() and path.stat().st_size <= CONFIGMAP_MAX:
                out[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return out


def _network_peers(source: Source, services: dict[str, dict[str, Any]]) -> None:
    """`network_mode: container:NAME` names a container: a service's container_name or,
    for a project's own container, the service itself."""
    by_container = {
        str(spec.get("container_name")): name
        for name, spec in services.items()
        if isinstance(spec, dict) and spec.get("container_name")
    }
    for c in source.containers:
        peer = c.network_peer
        if peer is None or peer in services:
            continue
        if peer in by_container:
            c.network_peer = by_container[peer]
        else:
            raise UserError(
                f"{c.source_file}: service {c.source_name!r}: key 'network_mode': no service or container_name {peer!r} in the project"
            )


def _links(source: Source, services: dict[str, dict[str, Any]]) -> None:
    """`links: [SERVICE:ALIAS]` makes SERVICE reachable as ALIAS (spec 05-services.md
    "links", compose-spec 170098ba): the alias becomes one of SERVICE's names. A link is
    also a start-order dependency like depends_on (same section)."""
    by_name = {c.source_name: c for c in source.containers}
    for c in source.containers:
        try:
            links = _str_list(services[c.source_name].get("links"), "links")
        except _Err as exc:
            raise UserError(f"{c.source_file}: service {c.source_name!r}: {exc}") from None
        for link in links:
            target, _colon, alias = link.partition(":")
            if target not in services:
                raise UserError(
                    f"{c.source_file}: service {c.source_name!r}: key 'links': unknown service {target!r}"
                )
            if target in by_name and alias:
                by_name[target].aliases.append((alias, f"link alias (from {c.source_name})"))
            if target not in c.depends_on:
                c.depends_on.append(target)


def _resolve_extends(
    raw: dict[str, Any], path: Path, seen: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in raw:
        out[str(name)] = _extended(str(name), raw, path, [])
    return out


def _extended(name: str, raw: dict[str, Any], path: Path, chain: list[str]) -> dict[str, Any]:
    spec = raw.get(name)
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise UserError(
            f"{path}: service {name!r}: must be a mapping of options, got {type(spec).__name__}"
        )
    ext = spec.get("extends")
    if ext is None:
        return spec
    key = f"{path}:{name}"
    if key in chain:
        raise UserError(
            f"{path}: service {name!r}: key 'extends': cycle {' → '.join([*chain, key])}"
        )
    if isinstance(ext, str):
        ext = {"service": ext}
    if not isinstance(ext, dict) or not isinstance(ext.get("service"), str):
        raise UserError(
            f"{path}: service {name!r}: key 'extends': want a service name or {{service, file}}"
        )
    base_path, base_raw = path, raw
    if ext.get("file"):
        base_path = (path.parent / str(ext["file"])).resolve()
        doc = _read(base_path)
        found = doc.get("services") if isinstance(doc, dict) else None
        if not isinstance(found, dict):
            raise UserError(
                f"{base_path}: key 'services': missing (needed by extends of {name!r} in {path})"
            )
        base_raw = found
    if ext["service"] not in base_raw:
        raise UserError(
            f"{path}: service {name!r}: key 'extends': no service {ext['service']!r} in {base_path}"
        )
    base = _extended(ext["service"], base_raw, base_path, [*chain, key])
    # only `extends` itself is dropped: compose-go loader/extends.go applyServiceExtends
    # (e70e961) `delete(merged, "extends")`; depends_on and the rest are inherited
    base = {k: v for k, v in base.items() if k != "extends"}
    own = {k: v for k, v in spec.items() if k != "extends"}
    return _merge(base, own)


def _str_list(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        return [str(v) for v in value]
    raise _Err(f"key {key!r}: must be a string or a list of strings")


def _command(c: Container, value: Any, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        # split as compose splits it (go-shellwords, see shellwords.py), not POSIX
        try:
            words, dropped = shellwords.split(value)
        except shellwords.ShellWordsError as exc:
            raise _Err(f"key {key!r}: {exc}") from None
        if dropped:
            c.note(
                "changed",
                key,
                f"compose ends a string {key} at {dropped[0]!r} and runs only {words}; {dropped!r} is dropped as it was (use the list form with sh -c to run it)",
            )
        return tuple(words)
    return tuple(_str_list(value, key))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_HANDLED = {
    "image", "build", "container_name", "command", "entrypoint", "environment", "env_file",
    "ports", "expose", "volumes", "tmpfs", "user", "working_dir", "hostname", "healthcheck",
    "deploy", "restart", "labels", "network_mode", "networks", "cap_add", "cap_drop",
    "privileged", "devices", "depends_on", "secrets", "configs", "profiles", "extra_hosts",
    "dns", "sysctls", "ulimits", "shm_size", "read_only", "stop_grace_period", "init",
    "runtime", "mem_limit", "mem_reservation", "cpus", "gpus", "pull_policy", "logging",
    "stdin_open", "tty", "platform", "scale", "group_add", "links",
}  # fmt: skip


def _service(
    name: str,
    spec: dict[str, Any],
    source_file: str,
    project_dir: str,
    top: dict[str, dict[str, Any]],
    project: str,
    home: str = "/root",
    env: dict[str, str] | None = None,
    local_dir: Path | None = None,
    config_data: dict[str, str] | None = None,
) -> Container:
    c = Container(source_name=name, source_file=source_file)
    for key in sorted(spec):
        if key not in _HANDLED and not str(key).startswith("x-"):
            c.note("lost", str(key), f"{key}: not converted")
    image = spec.get("image")
    if image is not None and not isinstance(image, str):
        raise _Err("key 'image': must be a string")
    if not image:
        if spec.get("build") is None:
            raise _Err("key 'image': missing (and no build to name one)")
        image = f"{project}-{name}"
        c.note(
            "action",
            "build",
            f"built locally: push the image and set `image:`; using {image!r} for now",
        )
    elif spec.get("build") is not None:
        c.note("lost", "build", "build section ignored: the cluster pulls the image")
    c.image = image
    if spec.get("container_name"):
        c.aliases.append((_scalar(spec["container_name"]), "container_name"))
    c.entrypoint = _command(c, spec.get("entrypoint"), "entrypoint")
    c.cmd = _command(c, spec.get("command"), "command")
    _environment(c, spec, project_dir, home, env or {}, local_dir)
    _ports(c, spec)
    _volumes(c, spec, project_dir, top, home, local_dir)
    _resources(c, spec)
    _health(c, spec.get("healthcheck"))
    for key, attr in (("user", "user"), ("working_dir", "workdir"), ("hostname", "hostname")):
        if spec.get(key) is not None:
            setattr(c, attr, _scalar(spec[key]))
    if c.hostname:
        c.aliases.append((c.hostname.split(".")[0], "hostname"))
    c.labels = {
        k: _scalar(v)
        for k, v in _normalise_mapping(spec.get("labels"), "labels").items()
        if v is not None
    }
    # compose-spec 05-services.md restart (170098ba): "no" (the default), always,
    # on-failure[:max-retries], unless-stopped
    restart = spec.get("restart")
    if restart is not None:
        c.restart = _scalar(restart)
    _network(c, spec)
    c.cap_add = [s.upper().removeprefix("CAP_") for s in _str_list(spec.get("cap_add"), "cap_add")]
    c.cap_drop = [
        s.upper().removeprefix("CAP_") for s in _str_list(spec.get("cap_drop"), "cap_drop")
    ]
    for key in ("privileged", "read_only", "init"):
        if spec.get(key) is not None and not isinstance(spec[key], bool):
            raise _Err(f"key {key!r}: must be true or false")
    c.group_add = _str_list(spec.get("group_add"), "group_add")
    c.privileged = bool(spec.get("privileged"))
    c.read_only_root = bool(spec.get("read_only"))
    if spec.get("init"):
        c.note("lost", "init", "init: the image's entrypoint runs as PID 1")
    _devices(c, spec)
    _depends(c, spec.get("depends_on"))
    _files(c, spec, top, project, config_data or {})
    for host, ip in sorted(_normalise_mapping(spec.get("extra_hosts"), "extra_hosts").items()):
        if ip is None:
            raise _Err(f"key 'extra_hosts': {host!r} needs host:ip")
        # compose-go types/hostList.go (e70e961): several IPs comma-separated (or a list
        # in the long syntax), brackets taken off an IPv6 address, no `:`/`=` in the name
        if not host or any(ch in host for ch in ":="):
            raise _Err(f"key 'extra_hosts': bad host name {host!r}")
        ips = ip if isinstance(ip, list) else _scalar(ip).split(",")
        for one in (_scalar(i) for i in ips):
            if len(one) > 2 and one[0] == "[" and one[-1] == "]":
                one = one[1:-1]
            if one == "host-gateway":
                c.note(
                    "lost",
                    "extra_hosts",
                    f"{host}:host-gateway has no pod equivalent; use the node IP",
                )
                continue
            c.add_hosts.append((host, one))
    c.dns = _str_list(spec.get("dns"), "dns")
    c.sysctls = {
        k: _scalar(v)
        for k, v in _normalise_mapping(spec.get("sysctls"), "sysctls").items()
        if v is not None
    }
    if spec.get("ulimits"):
        c.note(
            "lost",
            "ulimits",
            "Kubernetes has no per-pod ulimits; set the node's containerd defaults instead",
        )
    if spec.get("stop_grace_period") is not None:
        c.stop_grace_s = _unit(duration_seconds, spec["stop_grace_period"], "stop_grace_period")
    if spec.get("pull_policy") is not None:
        pp = _scalar(spec["pull_policy"])
        c.pull = _PULL.get(pp, "always")
        if pp not in _PULL:
            c.note("changed", "pull_policy", f"pull_policy {pp!r}: Always")
    if spec.get("platform"):
        c.note(
            "lost",
            "platform",
            f"platform {spec['platform']!r}: pin the architecture with a kubernetes.io/arch nodeSelector if needed",
        )
    if spec.get("scale") is not None:
        c.replicas = _int(spec["scale"], "scale")
    extract_gpus(c)
    if spec.get("runtime") == "nvidia" and not any(g.vendor == "nvidia" for g in c.gpus):
        # NVIDIA/nvidia-container-toolkit internal/config/image/cuda_image.go
        # DevicesFromEnvvars (1081cece): comma-separated, blanks skipped; empty or "void"
        # is no device. Unset is "all" only for legacy CUDA images and otherwise none:
        # the converter cannot see the image's ENV, so it takes "all" (CUDA images set
        # it). "none" (no GPU, driver only) is not verified in that source.
        visible = c.environment.get("NVIDIA_VISIBLE_DEVICES", "all")
        ids = [d.strip() for d in (visible or "").split(",") if d.strip()]
        if not ids or "void" in ids or ids == ["none"]:
            c.note(
                "lost",
                "runtime",
                f"runtime: nvidia with NVIDIA_VISIBLE_DEVICES={visible!r}: no GPU",
            )
        else:
            count = None if "all" in ids else len(ids)
            c.gpus.append(GpuRequest("nvidia", count, "runtime: nvidia"))
            merge_gpu_requests(c)
    elif spec.get("runtime") not in (None, "nvidia"):
        c.note("lost", "runtime", f"runtime {spec['runtime']!r}: choose a RuntimeClass by hand")
    return c


def _unit(fn: Any, value: Any, key: str) -> Any:
    try:
        return fn(value)
    except ValueError as exc:
        raise _Err(f"key {key!r}: {exc}") from None


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise _Err(f"key {key!r}: must be a whole number")
    return int(value)


def _expand_user(c: Container, key: str, path: str, home: str) -> str:
    """`~` as compose expands it: compose-go v2 paths/home.go ExpandUser (commit e70e961,
    2026-07) joins the home directory with everything after the `~`, for volume
    sources (paths/unix.go) and env_file paths (paths/resolve.go absPath)."""
    if not path.startswith("~"):
        return path
    expanded = posixpath.normpath(posixpath.join(home, "./" + path[1:]))
    c.note("changed", key, f"{path} → {expanded} (~ is {home}; --home DIR to change it)")
    return expanded


def _environment(
    c: Container,
    spec: dict[str, Any],
    project_dir: str,
    home: str,
    env: dict[str, str],
    local_dir: Path | None = None,
) -> None:
    for key, value in sorted(_normalise_mapping(spec.get("environment"), "environment").items()):
        if value is None:
            # `- NAME` takes NAME from the project environment (shell over .env):
            # compose-go v2 loader/environment.go resolveServicesEnvironment (e70e961);
            # unresolved, the variable is removed (spec 05-services.md "environment")
            if key in env:
                c.environment[key] = env[key]
                c.note("converted", "environment", f"{key}: value from the shell or .env")
            else:
                c.note(
                    "lost",
                    "environment",
                    f"{key}: no value in the shell or .env, so compose leaves it unset too",
                )
            continue
        if isinstance(value, dict | list):
            raise _Err(f"key 'environment': {key} must be a string")
        c.environment[key] = _scalar(value)
    env_files = spec.get("env_file")
    items = env_files if isinstance(env_files, list) else [] if env_files is None else [env_files]
    for item in items:
        path = item.get("path") if isinstance(item, dict) else item
        if not isinstance(path, str):
            raise _Err("key 'env_file': want a path or {path, required}")
        path = _expand_user(c, "env_file", path, home)
        # `required` "defaults to true"; compose refuses a missing required file
        # (spec 05-services.md "env_file"); the converter never reads it, only looks
        required = not (isinstance(item, dict) and item.get("required") is False)
        if local_dir is not None and not (local_dir / path).exists():
            if not required:
                continue
            c.note(
                "warning",
                "env_file",
                f"{path} not found beside the compose file ({local_dir}): compose would refuse to start {c.source_name}; create the Secret from the file on the host",
            )
        # shown in the hint, so say where the file is on the host
        c.environment_files.append(posixpath.normpath(posixpath.join(project_dir, path)))


def _ports(c: Container, spec: dict[str, Any]) -> None:
    ports = spec.get("ports") or []
    if not isinstance(ports, list):
        raise _Err("key 'ports': must be a list")
    for i, item in enumerate(ports):
        if isinstance(item, dict):
            target = item.get("target")
            if target is None:
                raise _Err(f"key 'ports'[{i}]: long form needs target")
            published = item.get("published")
            host_ip = item.get("host_ip")
            text = str(target)
            if published is not None and str(published) != "":
                text = f"{published}:{text}"
                if host_ip:
                    text = f"[{host_ip}]:{text}" if ":" in str(host_ip) else f"{host_ip}:{text}"
            elif host_ip:
                text = f"[{host_ip}]::{text}" if ":" in str(host_ip) else f"{host_ip}::{text}"
            if item.get("protocol"):
                text = f"{text}/{item['protocol']}"
            if item.get("mode") == "host":
                c.note("converted", "ports", f"{text}: mode host treated like a published port")
        elif isinstance(item, str | int) and not isinstance(item, bool):
            text = str(item)
        else:
            raise _Err(f"key 'ports'[{i}]: {item!r} is not a port spec")
        try:
            parsed, notes = publish(text)
        except ValueError as exc:
            raise _Err(f"key 'ports'[{i}]: {text!r}: {exc}") from None
        c.ports.extend(parsed)
        for note in notes:
            c.note("changed", "ports", note)
    for i, item in enumerate(_str_list(spec.get("expose"), "expose")):
        try:
            parsed, _ = parse_port(item)
        except ValueError as exc:
            raise _Err(f"key 'expose'[{i}]: {item!r}: {exc}") from None
        c.expose.extend(parsed)


def _volumes(
    c: Container,
    spec: dict[str, Any],
    project_dir: str,
    top: dict[str, dict[str, Any]],
    home: str,
    local_dir: Path | None = None,
) -> None:
    volumes = spec.get("volumes") or []
    if not isinstance(volumes, list):
        raise _Err("key 'volumes': must be a list")
    for i, item in enumerate(volumes):
        try:
            if isinstance(item, str):
                if item.startswith("~"):
                    src, colon, rest = item.partition(":")
                    item = _expand_user(c, "volumes", src, home) + colon + rest
                mount, notes = parse_volume(item, base_dir=project_dir, compose=True)
                for n in notes:
                    c.note("lost", "volumes", n)
            elif isinstance(item, dict):
                if isinstance(item.get("source"), str) and item["source"].startswith("~"):
                    item = {**item, "source": _expand_user(c, "volumes", item["source"], home)}
                mount = _long_volume(item, project_dir)
            else:
                raise ValueError(f"{item!r} is not a volume spec")
        except ValueError as exc:
            raise _Err(f"key 'volumes'[{i}]: {exc}") from None
        if mount.kind == "volume":
            declared = top["volumes"].get(mount.source)
            if declared is None:
                raise _Err(
                    f"key 'volumes'[{i}]: named volume {mount.source!r} is not declared under top-level volumes"
                )
            if declared.get("external"):
                c.note(
                    "warning",
                    "volumes",
                    f"volume {mount.source!r} is external: its data lives outside this project; copy it into the claim",
                )
            if declared.get("driver") not in (None, "local") or declared.get("driver_opts"):
                c.note(
                    "lost",
                    "volumes",
                    f"volume {mount.source!r}: driver settings not converted; the claim uses the storage class",
                )
        c.mounts.append(_known_file(mount, item, local_dir))
    for item in _str_list(spec.get("tmpfs"), "tmpfs"):
        try:
            add_tmpfs(c, item, "tmpfs")
        except ValueError as exc:
            raise _Err(f"key 'tmpfs': {exc}") from None


def _known_file(mount: Any, item: Any, local_dir: Path | None) -> Any:
    """A relative bind source that is a file beside the compose file (a config file the
    stack ships) gets hostPath type File: the kubelet then refuses to start the pod when
    the file is missing on the node instead of creating an empty directory there
    (k8s.io/api core/v1 types.go HostPathType: `File` "A file must exist at the given
    path"; the default "" checks nothing)."""
    from dataclasses import replace

    source = item.get("source") if isinstance(item, dict) else str(item).partition(":")[0]
    if mount.kind != "bind" or local_dir is None or not isinstance(source, str):
        return mount
    if source.startswith(".") and (local_dir / source).is_file():
        return replace(mount, host_type="File")
    return mount


def _long_volume(item: dict[str, Any], project_dir: str) -> Any:
    kind = item.get("type", "volume")
    target = item.get("target")
    if not isinstance(target, str) or not target.startswith("/"):
        raise ValueError("long form needs an absolute target")
    source = item.get("source")
    ro = bool(item.get("read_only", False))
    if kind == "tmpfs":
        size = (item.get("tmpfs") or {}).get("size")
        mount = parse_tmpfs(target)
        if size is not None:
            from dataclasses import replace

            mount = replace(mount, size=size_quantity(size))
        return mount
    if kind not in ("bind", "volume"):
        raise ValueError(f"volume type {kind!r} is not bind, volume or tmpfs")
    if not source:
        return parse_volume(target)[0]
    if not isinstance(source, str):
        raise ValueError("source must be a string")
    if kind == "bind" and not source.startswith(("/", ".", "~")):
        source = "./" + source
    mount = mount_for(source, posixpath.normpath(target), ro, project_dir)
    if kind == "volume" and mount.kind != "volume":
        raise ValueError(f"type volume with a path source {source!r}")
    return mount


def _resources(c: Container, spec: dict[str, Any]) -> None:
    deploy = spec.get("deploy") or {}
    if not isinstance(deploy, dict):
        raise _Err("key 'deploy': must be a mapping")
    res = deploy.get("resources") or {}
    if not isinstance(res, dict):
        raise _Err("key 'deploy.resources': must be a mapping")
    limits = res.get("limits") or {}
    reservations = res.get("reservations") or {}
    if not isinstance(limits, dict) or not isinstance(reservations, dict):
        raise _Err("key 'deploy.resources': limits and reservations must be mappings")
    r = c.resources
    if limits.get("cpus") is not None:
        r.cpu_limit = _unit(cpu_quantity, limits["cpus"], "deploy.resources.limits.cpus")
    if limits.get("memory") is not None:
        r.memory_limit = _unit(size_quantity, limits["memory"], "deploy.resources.limits.memory")
    if reservations.get("cpus") is not None:
        r.cpu_request = _unit(
            cpu_quantity, reservations["cpus"], "deploy.resources.reservations.cpus"
        )
    if reservations.get("memory") is not None:
        r.memory_request = _unit(
            size_quantity, reservations["memory"], "deploy.resources.reservations.memory"
        )
    if spec.get("cpus") is not None:
        r.cpu_limit = _unit(cpu_quantity, spec["cpus"], "cpus")
    if spec.get("mem_limit") is not None:
        r.memory_limit = _unit(size_quantity, spec["mem_limit"], "mem_limit")
    if spec.get("mem_reservation") is not None:
        r.memory_request = _unit(size_quantity, spec["mem_reservation"], "mem_reservation")
    if spec.get("shm_size") is not None:
        r.shm_size = _unit(size_quantity, spec["shm_size"], "shm_size")
    devices = reservations.get("devices") or []
    if not isinstance(devices, list):
        raise _Err("key 'deploy.resources.reservations.devices': must be a list")
    for i, dev in enumerate(devices):
        if not isinstance(dev, dict):
            raise _Err(f"key 'deploy.resources.reservations.devices'[{i}]: must be a mapping")
        _gpu_reservation(c, dev, f"deploy.resources.reservations.devices[{i}]")
    gpus = spec.get("gpus")
    if gpus == "all":
        c.gpus.append(GpuRequest("nvidia", None, "gpus: all"))
    elif isinstance(gpus, list):
        for i, dev in enumerate(gpus):
            if not isinstance(dev, dict):
                raise _Err(f"key 'gpus'[{i}]: must be a mapping")
            _gpu_reservation(c, {"capabilities": ["gpu"], **dev}, f"gpus[{i}]")
    elif gpus is not None:
        raise _Err("key 'gpus': must be `all` or a list")
    if deploy.get("replicas") is not None:
        c.replicas = _int(deploy["replicas"], "deploy.replicas")
    if deploy.get("mode") == "global":
        c.note(
            "lost",
            "deploy.mode",
            "mode global: one pod, not one per node (write a DaemonSet by hand)",
        )
    if limits.get("pids") is not None:
        c.note("lost", "deploy.resources.limits.pids", "set the kubelet's podPidsLimit instead")


# The engine picks the device driver whose capability set holds every requested
# capability: NVIDIA's is gpu, nvidia, compute, compat32, graphics, utility, video,
# display; AMD's gpu, amd (moby daemon/nvidia_linux.go init, commit 18a2f3f0)
_NVIDIA_CAPS = frozenset(
    ["gpu", "nvidia", "compute", "compat32", "graphics", "utility", "video", "display"]
)
_AMD_CAPS = frozenset(["gpu", "amd"])


def _gpu_reservation(c: Container, dev: dict[str, Any], key: str) -> None:
    caps = {str(x) for x in (dev.get("capabilities") or [])}
    driver = str(dev.get("driver") or "")
    amd_caps = "amd" in caps and caps <= _AMD_CAPS
    if not (caps and (caps <= _NVIDIA_CAPS or amd_caps)) and driver not in ("nvidia", "amd", "cdi"):
        c.note("lost", key, f"device reservation {dev!r} is not a GPU; not converted")
        return
    vendor: Literal["nvidia", "amd"] = "amd" if driver == "amd" or amd_caps else "nvidia"
    ids = dev.get("device_ids")
    count = dev.get("count")
    if ids is not None and count is not None:
        # compose-go validation/validation.go checkDeviceRequest (e70e961)
        raise _Err(f'key {key!r}: "count" and "device_ids" attributes are exclusive')
    if ids:
        if not isinstance(ids, list):
            raise _Err(f"key {key!r}: device_ids must be a list")
        if driver == "cdi":
            for ident in ids:
                c.devices.append(parse_device(str(ident)))
            return
        n: int | None = len(ids)
        c.note(
            "warning",
            key,
            f"device_ids {[str(i) for i in ids]}: the device plugin picks which GPUs a pod gets; asking for {n} of any (pin a model with a node label)",
        )
    elif count in (None, "all", -1):
        # neither count nor device_ids: count "all" (compose-go transform/devices.go
        # deviceRequestDefaults, e70e961)
        n = None
    else:
        n = _int(count, f"{key}.count")
        if n < 1:
            raise _Err(f"key {key!r}: count must be at least 1")
    c.gpus.append(GpuRequest(vendor, n, key))


def _health(c: Container, hc: Any) -> None:
    if hc is None:
        return
    if not isinstance(hc, dict):
        raise _Err("key 'healthcheck': must be a mapping")
    if hc.get("disable") is True:
        return
    test = hc.get("test")
    if test is None:
        c.note(
            "lost",
            "healthcheck",
            "no test: the image's own HEALTHCHECK is not known to the converter",
        )
        return
    if isinstance(test, str):
        command: tuple[str, ...] = ("/bin/sh", "-c", test)
    elif isinstance(test, list) and test and all(isinstance(t, str | int) for t in test):
        words = [str(t) for t in test]
        if words[0] == "NONE":
            return
        if words[0] == "CMD-SHELL":
            # podman joins the words into one script (libpod/healthcheck.go, c6580b4a);
            # moby passes them after `/bin/sh -c` as they are, so a second word would be
            # $0 (daemon/health.go cmdProbe.run, 02483258): we follow podman here
            command = ("/bin/sh", "-c", " ".join(words[1:]))
        elif words[0] == "CMD":
            command = tuple(words[1:])
        else:
            raise _Err(
                f"key 'healthcheck.test': must start with CMD, CMD-SHELL or NONE, got {words[0]!r}"
            )
        if not command or command == ("/bin/sh", "-c", ""):
            raise _Err("key 'healthcheck.test': empty command")
    else:
        raise _Err("key 'healthcheck.test': must be a string or a list")
    start_interval = (
        _unit(duration_seconds, hc["start_interval"], "healthcheck.start_interval")
        if hc.get("start_interval") is not None
        else None
    )
    # docker's default start interval is 5 s (moby daemon/health.go defaultStartInterval,
    # 02483258; the spec: healthcheck "has the same default values" as HEALTHCHECK)
    start_interval = start_interval or 5
    c.healthcheck = Healthcheck(
        command,
        _unit(duration_seconds, hc["interval"], "healthcheck.interval")
        if hc.get("interval") is not None
        else None,
        _unit(duration_seconds, hc["timeout"], "healthcheck.timeout")
        if hc.get("timeout") is not None
        else None,
        _int(hc["retries"], "healthcheck.retries") if hc.get("retries") is not None else None,
        _unit(duration_seconds, hc["start_period"], "healthcheck.start_period")
        if hc.get("start_period") is not None
        else None,
        start_interval,
    )


def _network(c: Container, spec: dict[str, Any]) -> None:
    mode = spec.get("network_mode")
    if mode == "host":
        c.host_network = True
    elif isinstance(mode, str) and mode.startswith(("service:", "container:")):
        c.network_peer = mode.partition(":")[2]  # resolved to a service in load_compose
    elif mode is not None:
        c.note(
            "lost",
            "network_mode",
            f"network_mode {mode!r}: every pod has its own network; use a sidecar for service:/container: modes",
        )
    networks = spec.get("networks")
    if isinstance(networks, dict):
        names = sorted(map(str, networks))
        for net in names:
            v = networks[net]
            if not isinstance(v, dict):
                continue
            for alias in _str_list(v.get("aliases"), f"networks.{net}.aliases"):
                c.aliases.append((alias, f"network alias ({net})"))
            if v.get("ipv4_address") or v.get("ipv6_address"):
                c.note(
                    "lost",
                    "networks",
                    f"fixed address on network {net}: pod addresses come from the cluster CIDR; reach it by Service name",
                )
    elif isinstance(networks, list):
        names = sorted(map(str, networks))
    elif networks is None:
        names = []
    else:
        raise _Err("key 'networks': must be a list or a mapping")
    if names and names != ["default"]:
        c.note(
            "lost",
            "networks",
            f"networks {names}: all pods share one flat network; isolate with NetworkPolicies if needed",
        )


def _devices(c: Container, spec: dict[str, Any]) -> None:
    devices = spec.get("devices") or []
    if not isinstance(devices, list):
        raise _Err("key 'devices': must be a list")
    for i, item in enumerate(devices):
        text = (
            f"{item.get('source')}:{item.get('target', item.get('source'))}"
            if isinstance(item, dict)
            else item
        )
        if not isinstance(text, str):
            raise _Err(f"key 'devices'[{i}]: {item!r} is not a device")
        try:
            c.devices.append(parse_device(text))
        except OptionError as exc:
            raise _Err(f"key 'devices'[{i}]: {exc}") from None


def _optional_deps(deps: Any) -> set[str]:
    """Long-syntax dependencies with `required: false` ("If it's not defined the default
    value of `required` is `true`", compose-spec 05-services.md depends_on, 170098ba)."""
    if not isinstance(deps, dict):
        return set()
    return {str(k) for k, v in deps.items() if isinstance(v, dict) and v.get("required") is False}


def _depends(c: Container, deps: Any) -> None:
    if deps is None:
        return
    if isinstance(deps, list):
        c.depends_on = [str(d) for d in deps]
        return
    if not isinstance(deps, dict):
        raise _Err("key 'depends_on': must be a list or a mapping")
    for dep, cond in deps.items():
        c.depends_on.append(str(dep))
        condition = cond.get("condition") if isinstance(cond, dict) else None
        if condition == "service_completed_successfully":
            c.awaits_completion.append(str(dep))
            c.note(
                "lost",
                "depends_on",
                f"{dep}: runs as a Job, but a pod does not wait for a Job to complete: start order not kept",
            )


def _files(
    c: Container,
    spec: dict[str, Any],
    top: dict[str, dict[str, Any]],
    project: str,
    config_data: dict[str, str],
) -> None:
    for key, default_dir, attr, create in (
        ("secrets", "/run/secrets", "secret_files", "secret generic"),
        ("configs", "", "config_files", "configmap"),
    ):
        items = spec.get(key) or []
        if not isinstance(items, list):
            raise _Err(f"key {key!r}: must be a list")
        for i, item in enumerate(items):
            if isinstance(item, str):
                ref, target = item, None
            elif isinstance(item, dict) and isinstance(item.get("source"), str):
                ref, target = item["source"], item.get("target")
            else:
                raise _Err(f"key {key!r}[{i}]: want a name or {{source, target}}")
            declared = top[key].get(ref)
            if declared is None:
                raise _Err(f"key {key!r}[{i}]: {ref!r} is not declared under top-level {key}")
            path = (
                str(target)
                if target and str(target).startswith("/")
                else f"{default_dir}/{target or ref}"
            )
            getattr(c, attr).append((ref, path))
            obj = f"{sanitize(project)}-{sanitize(ref)}"
            if key == "configs" and ref in config_data:
                c.note("converted", key, f"{ref} → ConfigMap {obj} (_configs.yaml) at {path}")
                continue
            origin = declared.get("file") or declared.get("environment") or "(external)"
            flag = (
                f"--from-file={re.sub(r'[^-._a-zA-Z0-9]', '_', ref)}={origin}"
                if declared.get("file")
                else f"--from-literal={ref}=…"
            )
            c.note(
                "action",
                key,
                f"{ref} → mounted from {'Secret' if key == 'secrets' else 'ConfigMap'} {obj} at {path}: kubectl create {create} {obj} {flag} (the converter does not read {origin})",
            )
