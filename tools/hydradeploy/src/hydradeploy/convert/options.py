"""`podman run` / `docker run` flags (oci-containers `extraOptions`) into the model.

Flags come as a list of argv tokens, either `--flag=value` or `--flag value`. Every flag
we know is either converted, or recorded as a `lost` note saying why; unknown flags are
reported as not converted. Value-taking flags are listed so that their value is never
mistaken for the next flag.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from hydradeploy.convert.gpus import GpuError, parse_gpus_flag
from hydradeploy.convert.model import Container, Device, GpuRequest
from hydradeploy.convert.ports import publish
from hydradeploy.convert.units import cpu_quantity, duration_seconds, size_quantity, whole_seconds
from hydradeploy.convert.volumes import parse_tmpfs, parse_volume


class OptionError(ValueError):
    pass


def parse_device(spec: str) -> Device:
    """`/dev/x[:/dev/y[:rwm]]` or a CDI name such as `nvidia.com/gpu=all`."""
    if not isinstance(spec, str) or not spec:
        raise OptionError("empty device")
    if not spec.startswith("/"):
        if "=" in spec and "/" in spec.split("=", 1)[0]:
            return Device(spec, "")
        raise OptionError(
            f"device {spec!r} is neither a /dev path nor a CDI name (vendor.com/class=name)"
        )
    parts = spec.split(":")
    if len(parts) > 3:
        raise OptionError(f"device {spec!r} has too many ':'")
    host = parts[0]
    container = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    return Device(host, container)


def _capability(name: str) -> str:
    cap = name.strip().upper()
    return cap[4:] if cap.startswith("CAP_") else cap


def _kv(value: str, flag: str) -> tuple[str, str]:
    key, eq, val = value.partition("=")
    if not eq or not key:
        raise OptionError(f"{flag} {value!r} needs KEY=VALUE")
    return key, val


def _add_host(c: Container, value: str) -> None:
    # docker: host:ip (ip may be IPv6, so split on the first ':'); `host=ip` not verified.
    # podman: `hostname[;hostname[;...]]:ip`, and the special ip `host-gateway`
    # (containers/podman docs/source/markdown/options/add-host.md, c6580b4a)
    sep = "=" if "=" in value else ":"
    names, _s, ip = value.partition(sep)
    hosts = [n for n in names.split(";") if n]
    if not hosts or not ip:
        raise OptionError(f"--add-host {value!r} needs HOST:IP")
    if ip == "host-gateway":
        c.note("lost", "--add-host", f"{names}:host-gateway has no pod equivalent; use the node IP")
        return
    c.add_hosts.extend((name, ip) for name in hosts)


def _json_strings(value: str) -> list[str] | None:
    """`value` as a JSON array of strings (Go json.Unmarshal into []string), else None."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
        return parsed
    return None


def entrypoint_argv(value: str, podman: bool = True) -> tuple[str, ...]:
    """`--entrypoint`: podman reads a JSON array of strings, else the whole value is one
    executable (containers/podman pkg/specgenutil/specgen.go, c6580b4a); docker always
    takes the value as one executable (docker/cli cli/command/container/opts.go parse:
    `strslice.StrSlice{copts.entrypoint}`, 006ec01b). Neither splits on spaces."""
    array = _json_strings(value) if podman else None
    return tuple(array) if array is not None else (value,)


def health_command(value: str) -> tuple[str, ...] | None:
    """`--health-cmd` as podman MakeHealthCheckFromCli (pkg/specgenutil/specgen.go,
    c6580b4a) reads it: a JSON array is exec form (CMD/CMD-SHELL/NONE first is
    honoured), a string starting with CMD is split on whitespace, CMD-SHELL takes the
    rest as one script, anything else runs under /bin/sh -c; NONE (any case) disables.
    Returns the exec argv, or None for disabled."""
    array = _json_strings(value)
    words = array if array is not None else value.split(" ", 1)
    if not words or not words[0]:
        raise OptionError("--health-cmd needs a command")
    head = words[0].upper()
    if head in ("CMD", "NONE"):
        if array is None:
            words = value.split()
    elif head != "CMD-SHELL":
        if array is not None and len(words) > 1:
            words = ["CMD", *words]
        else:
            words = ["CMD-SHELL", " ".join(words)]
    head = words[0].upper()
    if head == "NONE":
        return None
    if head == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(words[1:]))
    if len(words) < 2:
        raise OptionError("--health-cmd CMD needs a command after it")
    return tuple(words[1:])


def _health_cmd(c: Container, value: str) -> None:
    from hydradeploy.convert.model import Healthcheck

    hc = c.healthcheck or Healthcheck(())
    command = health_command(value)
    if command is None:
        c.healthcheck = None
        return
    c.healthcheck = Healthcheck(command, hc.interval_s, hc.timeout_s, hc.retries, hc.start_period_s)


def _health_field(field_name: str) -> Callable[[Container, str], None]:
    def apply(c: Container, value: str) -> None:
        from dataclasses import replace

        from hydradeploy.convert.model import Healthcheck

        hc = c.healthcheck or Healthcheck(())
        number = int(value) if field_name == "retries" else duration_seconds(value)
        c.healthcheck = replace(hc, **{field_name: number})  # type: ignore[arg-type]

    return apply


def _network(c: Container, value: str) -> None:
    if value == "host":
        c.host_network = True
    elif value.startswith("container:"):
        c.network_peer = value.partition(":")[2]  # shares that container's network
    elif value in ("none",):
        c.note("lost", "--network", "network none: pods always get a network interface")
    else:
        c.note(
            "lost",
            "--network",
            f"network {value!r}: every pod shares the flat cluster network; other containers are reached by Service name",
        )


def _hostname(c: Container, value: str) -> None:
    c.hostname = value
    c.aliases.append((value.split(".")[0], "--hostname"))


def _restart(c: Container, value: str) -> None:
    c.restart = value


def _memory(c: Container, value: str) -> None:
    c.resources.memory_limit = size_quantity(value)


def _memory_reservation(c: Container, value: str) -> None:
    c.resources.memory_request = size_quantity(value)


def _cpus(c: Container, value: str) -> None:
    c.resources.cpu_limit = cpu_quantity(value)


def _shm(c: Container, value: str) -> None:
    c.resources.shm_size = size_quantity(value)


def _env(c: Container, value: str) -> None:
    key, eq, val = value.partition("=")
    if not key:
        raise OptionError(f"-e {value!r} has no name")
    if not eq:
        c.note(
            "lost",
            "-e",
            f"{key}: value taken from the host's environment at run time; set it explicitly",
        )
        return
    c.environment[key] = val


def _label(c: Container, value: str) -> None:
    key, _eq, val = value.partition("=")
    if not key:
        raise OptionError(f"--label {value!r} has no name")
    c.labels[key] = val


def _sysctl(c: Container, value: str) -> None:
    key, val = _kv(value, "--sysctl")
    c.sysctls[key] = val


def _gpus(c: Container, value: str, podman: bool = True) -> None:
    try:
        count = parse_gpus_flag(value, podman=podman)
    except GpuError as exc:
        raise OptionError(str(exc)) from None
    c.gpus.append(GpuRequest("nvidia", count, f"--gpus {value}"))


def _lost(why: str) -> Callable[[Container, str], None]:
    def apply(c: Container, value: str) -> None:
        c.note("lost", "extraOptions", why.format(value=value))

    return apply


def _ignored(c: Container, value: str) -> None:
    """Flags that only matter to a local container engine (and mean nothing in a pod)."""


def _set(attr: str, transform: Callable[[str], object] = str) -> Callable[[Container, str], None]:
    def apply(c: Container, value: str) -> None:
        setattr(c, attr, transform(value))

    return apply


def _append(attr: str, transform: Callable[[str], object]) -> Callable[[Container, str], None]:
    def apply(c: Container, value: str) -> None:
        getattr(c, attr).append(transform(value))

    return apply


def _publish(c: Container, value: str) -> None:
    ports, notes = publish(value)
    c.ports.extend(ports)
    for note in notes:
        c.note("changed", "ports", note)


def _volume(c: Container, value: str) -> None:
    mount, notes = parse_volume(value)
    c.mounts.append(mount)
    for n in notes:
        c.note("lost", "-v", n)


# Go strconv.ParseBool, which docker's --mount uses for ro/readonly
_GO_TRUE = frozenset(["1", "t", "T", "TRUE", "true", "True"])
_GO_FALSE = frozenset(["0", "f", "F", "FALSE", "false", "False"])


def _mount_read_only(fields: dict[str, str], has_value: set[str]) -> bool:
    """docker/cli opts/mount.go MountOpt.Set (02cae2f7): `ro`/`readonly` alone is true,
    with a value it is strconv.ParseBool of it; anything else is an error."""
    ro = False
    for key in ("readonly", "ro"):
        if key not in fields:
            continue
        if key not in has_value or fields[key] in _GO_TRUE:
            ro = True
        elif fields[key] not in _GO_FALSE:
            raise OptionError(f"--mount: invalid value for {key}: {fields[key]}")
    return ro


def _mount(c: Container, value: str) -> None:
    parts = [p for p in value.split(",") if p]
    fields = {p.partition("=")[0]: p.partition("=")[2] for p in parts}
    has_value = {p.partition("=")[0] for p in parts if "=" in p}
    kind = fields.get("type", "volume").lower()
    target = fields.get("target") or fields.get("destination") or fields.get("dst") or ""
    source = fields.get("source") or fields.get("src") or ""
    ro = _mount_read_only(fields, has_value)
    if kind == "tmpfs":
        # tmpfs-size: units.RAMInBytes (docker/cli opts/mount.go, 02cae2f7)
        size = fields.get("tmpfs-size")
        mount = parse_tmpfs(target)
        c.mounts.append(replace(mount, size=size_quantity(size)) if size else mount)
        return
    if kind not in ("bind", "volume"):
        raise OptionError(f"--mount type {kind!r} is not bind, volume or tmpfs")
    spec = f"{source}:{target}:{'ro' if ro else 'rw'}" if source else target
    _volume(c, spec)


def add_tmpfs(c: Container, value: str, key: str) -> None:
    mount = parse_tmpfs(value)
    c.mounts.append(mount)
    if mount.size is None and "%" in value:
        c.note("lost", key, f"{value}: a size in % of the host's RAM has no pod equivalent")


def _stop_timeout(c: Container, value: str) -> None:
    c.stop_grace_s = whole_seconds(value)  # seconds, not a duration: units.whole_seconds


# flag -> handler; every flag here takes a value.
VALUE_FLAGS: dict[str, Callable[[Container, str], None]] = {
    "--network": _network,
    "--net": _network,
    "--device": _append("devices", parse_device),
    "--gpus": _gpus,
    "--cap-add": _append("cap_add", _capability),
    "--cap-drop": _append("cap_drop", _capability),
    "--memory": _memory,
    "-m": _memory,
    "--memory-reservation": _memory_reservation,
    "--cpus": _cpus,
    "--shm-size": _shm,
    "--health-cmd": _health_cmd,
    "--health-interval": _health_field("interval_s"),
    "--health-timeout": _health_field("timeout_s"),
    "--health-retries": _health_field("retries"),
    "--health-start-period": _health_field("start_period_s"),
    "--add-host": _add_host,
    "--dns": _append("dns", str),
    "--tmpfs": lambda c, v: add_tmpfs(c, v, "--tmpfs"),
    "--ulimit": _lost(
        "--ulimit {value}: Kubernetes has no per-pod ulimits; set the node's containerd defaults (LimitNOFILE) instead"
    ),
    "--sysctl": _sysctl,
    "--label": _label,
    "-l": _label,
    "--env": _env,
    "-e": _env,
    "--env-file": _append("environment_files", str),
    "--restart": _restart,
    "--ip": _lost(
        "--ip {value}: pod addresses come from the cluster CIDR; reach it by Service name"
    ),
    "--ip6": _lost("--ip6 {value}: pod addresses come from the cluster CIDR"),
    "--publish": _publish,
    "-p": _publish,
    "--volume": _volume,
    "-v": _volume,
    "--mount": _mount,
    "--user": _set("user"),
    "-u": _set("user"),
    "--workdir": _set("workdir"),
    "-w": _set("workdir"),
    "--hostname": _hostname,
    "-h": _hostname,
    "--entrypoint": lambda c, v: setattr(c, "entrypoint", entrypoint_argv(v)),
    "--pull": _set("pull"),
    "--stop-timeout": _stop_timeout,
    "--name": _ignored,
    "--log-driver": _ignored,
    "--log-opt": _ignored,
    "--cidfile": _ignored,
    "--conmon-pidfile": _ignored,
    "--cgroups": _ignored,
    "--sdnotify": _ignored,
    "--pod": _lost("--pod {value}: containers of a podman pod become separate workloads"),
    "--network-alias": lambda c, v: c.aliases.append((v, "--network-alias")),
    "--security-opt": _lost(
        "--security-opt {value}: set seccompProfile/appArmorProfile by hand if needed"
    ),
    "--userns": _lost(
        "--userns {value}: user namespaces need hostUsers: false and a recent kernel; not converted"
    ),
    "--stop-signal": _lost(
        "--stop-signal {value}: pods are stopped with SIGTERM (use a preStop hook)"
    ),
    "--runtime": _lost("--runtime {value}: choose a RuntimeClass by hand"),
    "--ipc": _lost("--ipc {value}: not converted"),
    "--pid": _lost("--pid {value}: hostPID not converted"),
    "--group-add": _append("group_add", str),
    "--cpu-shares": _lost("--cpu-shares {value}: use --cpus (limits) instead"),
    "--cpuset-cpus": _lost("--cpuset-cpus {value}: needs the static CPU manager policy"),
    "--pids-limit": _lost("--pids-limit {value}: set the kubelet's podPidsLimit instead"),
    "--umask": _lost("--umask {value}: not converted"),
    "--uidmap": _lost("--uidmap {value}: not converted"),
    "--gidmap": _lost("--gidmap {value}: not converted"),
}
BOOL_FLAGS: dict[str, Callable[[Container, str], None]] = {
    "--privileged": lambda c, v: setattr(c, "privileged", v != "false"),
    "--read-only": lambda c, v: setattr(c, "read_only_root", v != "false"),
    "--init": _lost(
        "--init: the image's entrypoint runs as PID 1 (use shareProcessNamespace or tini)"
    ),
    "--rm": _ignored,
    "-d": _ignored,
    "--detach": _ignored,
    "-i": _ignored,
    "-t": _ignored,
    "-it": _ignored,
    "--interactive": _ignored,
    "--tty": _ignored,
    "--no-healthcheck": lambda c, v: setattr(c, "healthcheck", None),
    "--replace": _ignored,
}


def apply_options(
    c: Container, tokens: list[str], key: str = "extraOptions", podman: bool = True
) -> None:
    """Apply `tokens` to `c`; raise OptionError naming the flag on a bad value.
    `podman`: the flags go to `podman run` (else `docker run`), where they differ."""
    i = 0
    timer_off = False
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if not isinstance(tok, str):
            raise OptionError(f"{key}: item {tok!r} is not a string")
        if not tok.startswith("-") or tok == "-":
            c.note("lost", key, f"{tok!r} is not a flag; ignored")
            continue
        flag, eq, value = tok.partition("=")
        if flag in VALUE_FLAGS:
            if not eq:
                if i >= len(tokens) or not isinstance(tokens[i], str):
                    raise OptionError(f"{key}: {flag} needs a value")
                value = tokens[i]
                i += 1
            if flag == "--health-interval" and value == "disable":
                # podman MakeHealthCheckFromCli (c6580b4a): "disable" is interval 0, "no
                # automatic timer setup" (health-interval.md): the check never runs itself
                timer_off = True
                continue
            try:
                if flag == "--gpus":
                    _gpus(c, value, podman)
                elif flag == "--entrypoint":
                    c.entrypoint = entrypoint_argv(value, podman)
                else:
                    VALUE_FLAGS[flag](c, value)
            except ValueError as exc:
                raise OptionError(f"{key}: {flag} {value!r}: {exc}") from None
        elif flag in BOOL_FLAGS:
            BOOL_FLAGS[flag](c, value if eq else "true")
        else:
            c.note("lost", key, f"{tok}: not converted (unknown to the converter)")
    if timer_off and c.healthcheck is not None:
        c.healthcheck = None
        c.note("lost", key, "--health-interval=disable: the check never ran on its own; no probe")
