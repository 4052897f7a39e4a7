"""Which keys the compose specification allows where: facts from the compose-spec JSON
schema, github.com/compose-spec/compose-spec schema/compose-spec.json at commit
170098ba07d9f53c383a41bfd4c5166b0a4529a6 (2026-06-23). Every one of these objects has
`additionalProperties: false` and allows `x-` extension keys (`patternProperties ^x-`),
so docker compose refuses any other key; the converter does the same.

Paths: "" is the top level, `*` any name, `[]` an item of a list (its long form).
"""

from __future__ import annotations

import difflib

SCHEMA_SOURCE = "compose-spec schema/compose-spec.json @ 170098ba"

ALLOWED: dict[str, frozenset[str]] = {
    "": frozenset(
        [
            "configs",
            "include",
            "models",
            "name",
            "networks",
            "secrets",
            "services",
            "version",
            "volumes",
        ]
    ),
    "services.*": frozenset(
        [
            "annotations",
            "attach",
            "blkio_config",
            "build",
            "cap_add",
            "cap_drop",
            "cgroup",
            "cgroup_parent",
            "command",
            "configs",
            "container_name",
            "cpu_count",
            "cpu_percent",
            "cpu_period",
            "cpu_quota",
            "cpu_rt_period",
            "cpu_rt_runtime",
            "cpu_shares",
            "cpus",
            "cpuset",
            "credential_spec",
            "depends_on",
            "deploy",
            "develop",
            "device_cgroup_rules",
            "devices",
            "dns",
            "dns_opt",
            "dns_search",
            "domainname",
            "entrypoint",
            "env_file",
            "environment",
            "expose",
            "extends",
            "external_links",
            "extra_hosts",
            "gpus",
            "group_add",
            "healthcheck",
            "hostname",
            "image",
            "init",
            "ipc",
            "isolation",
            "label_file",
            "labels",
            "links",
            "logging",
            "mac_address",
            "mem_limit",
            "mem_reservation",
            "mem_swappiness",
            "memswap_limit",
            "models",
            "network_mode",
            "networks",
            "oom_kill_disable",
            "oom_score_adj",
            "pid",
            "pids_limit",
            "platform",
            "ports",
            "post_start",
            "pre_stop",
            "privileged",
            "profiles",
            "provider",
            "pull_policy",
            "pull_refresh_after",
            "read_only",
            "restart",
            "runtime",
            "scale",
            "secrets",
            "security_opt",
            "shm_size",
            "stdin_open",
            "stop_grace_period",
            "stop_signal",
            "storage_opt",
            "sysctls",
            "tmpfs",
            "tty",
            "ulimits",
            "use_api_socket",
            "user",
            "userns_mode",
            "uts",
            "volumes",
            "volumes_from",
            "working_dir",
        ]
    ),
    "services.*.healthcheck": frozenset(
        ["disable", "interval", "retries", "start_interval", "start_period", "test", "timeout"]
    ),
    "services.*.deploy": frozenset(
        [
            "endpoint_mode",
            "labels",
            "mode",
            "placement",
            "replicas",
            "resources",
            "restart_policy",
            "rollback_config",
            "update_config",
        ]
    ),
    "services.*.deploy.resources": frozenset(["limits", "reservations"]),
    "services.*.deploy.resources.limits": frozenset(["cpus", "memory", "pids"]),
    "services.*.deploy.resources.reservations": frozenset(
        ["cpus", "devices", "generic_resources", "memory"]
    ),
    "services.*.deploy.resources.reservations.devices[]": frozenset(
        ["capabilities", "count", "device_ids", "driver", "options"]
    ),
    "services.*.ports[]": frozenset(
        ["app_protocol", "host_ip", "mode", "name", "protocol", "published", "target"]
    ),
    "services.*.volumes[]": frozenset(
        ["bind", "consistency", "image", "read_only", "source", "target", "tmpfs", "type", "volume"]
    ),
    "services.*.volumes[].bind": frozenset(
        ["create_host_path", "propagation", "recursive", "selinux"]
    ),
    "services.*.volumes[].volume": frozenset(["labels", "nocopy", "subpath"]),
    "services.*.volumes[].tmpfs": frozenset(["mode", "size"]),
    "services.*.volumes[].image": frozenset(["subpath"]),
    "services.*.depends_on.*": frozenset(["condition", "required", "restart"]),
    "services.*.networks.*": frozenset(
        [
            "aliases",
            "driver_opts",
            "gw_priority",
            "interface_name",
            "ipv4_address",
            "ipv6_address",
            "link_local_ips",
            "mac_address",
            "priority",
        ]
    ),
    "volumes.*": frozenset(["driver", "driver_opts", "external", "labels", "name"]),
    "networks.*": frozenset(
        [
            "attachable",
            "driver",
            "driver_opts",
            "enable_ipv4",
            "enable_ipv6",
            "external",
            "internal",
            "ipam",
            "labels",
            "name",
        ]
    ),
    "secrets.*": frozenset(
        [
            "driver",
            "driver_opts",
            "environment",
            "external",
            "file",
            "labels",
            "name",
            "template_driver",
        ]
    ),
    "configs.*": frozenset(
        ["content", "environment", "external", "file", "labels", "name", "template_driver"]
    ),
}


def unknown_key_error(path: str, key: object) -> str | None:
    """Why `key` may not appear at `path` (with a "did you mean"), or None when it may."""
    allowed = ALLOWED.get(path)
    if allowed is None or not isinstance(key, str):
        return None if allowed is None else f"key {key!r} is not a string"
    if key in allowed or key.startswith("x-"):
        return None
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}; the compose specification has no such key here"
