"""The parts of one pod's objects, each built by a pure function.

emit.py decides everything that depends on the whole source first — names, aliases,
which containers share a pod, which volumes are shared, and each pod's placement
(`emit.place`) — and puts it in a `Pod`. Every function here then reads that `Pod` (and
the model's Container) and returns its part with the notes it has to say: nothing is
shared or mutated between parts, so they can be built, tested and reordered one by one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Literal

from hydradeploy.convert.model import Container, Note, NoteKind, Port, Source
from hydradeploy.convert.names import sanitize
from hydradeploy.convert.secrets_split import is_secret, split_environment
from hydradeploy.kube_names import is_dns1123_label, label_key_error

MANAGED_BY = "hydradeploy"
WAIT_IMAGE = "busybox:1.37"
NODEPORT_RANGE = range(30000, 32768)
NVIDIA_RUNTIME_CLASS = "nvidia"
# the device plugins' resource names: NVIDIA/k8s-device-plugin api/config/v1/resources.go
# NewResourceName (prefix "nvidia.com", stored copy 0e1a6ff6) with the default resource
# "gpu" (AddDefaultResourcesToConfig, not read at our v0.20.0 pin); ROCm/k8s-device-plugin
# cmd/k8s-device-plugin/main.go GetResourceNamespace "amd.com", resource "gpu" (06c7abd6)
GPU_RESOURCES = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
# ports k3s itself listens on (docs.k3s.io networking requirements)
K3S_PORTS = {
    (6443, "TCP"): "API server",
    (10250, "TCP"): "kubelet",
    (2379, "TCP"): "etcd",
    (2380, "TCP"): "etcd peers",
    (8472, "UDP"): "flannel VXLAN",
    (51820, "UDP"): "flannel WireGuard",
    (51821, "UDP"): "flannel WireGuard IPv6",
    (5001, "TCP"): "embedded registry",
}
# sysctls the kubelet allows without --allowed-unsafe-sysctls: kubernetes
# pkg/kubelet/sysctl/safe_sysctls.go safeSysctls + newerSysctls (a recent stored copy whose
# commit could not be named; ip_local_reserved_ports, tcp_rmem, tcp_wmem need new kernels)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
_PULL_POLICY = {"always": "Always", "missing": "IfNotPresent", "never": "Never", "newer": "Always"}
SECRET_KEY = re.compile(r"[^-._a-zA-Z0-9]")
# docker run --user "<name|uid>[:<group|gid>]" (docker/cli cli/command/container/opts.go)
_NUMERIC_USER = re.compile(r"^(\d+)(?::(\d+))?\Z")

Notes = tuple[Note, ...]
WorkloadKind = Literal["Deployment", "StatefulSet", "Job"]
ServiceKind = Literal["NodePort", "LoadBalancer"]


@dataclass(frozen=True)
class EmitOptions:
    namespace: str
    host: str | None = None  # node that holds bind-mounted data
    storage_class: str | None = None  # None: the cluster default (k3s: local-path)
    volume_size: str = "10Gi"
    volume_sizes: dict[str, str] = field(default_factory=dict)  # source volume -> size

    def size_of(self, volume: str) -> str:
        return self.volume_sizes.get(volume, self.volume_size)

    gpu_count: Callable[[str], int | None] = lambda vendor: None  # host GPUs per vendor
    volume_root: str = "/var/lib/containers/storage/volumes"  # where named volumes live now


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and how one pod runs, decided from the model before any object is built:
    the workload kind, why it is pinned to the data's node, why it cannot roll."""

    workload: WorkloadKind
    pin: tuple[str, ...] = ()
    recreate: tuple[str, ...] = ()
    restart_policy: str | None = None  # Jobs: Never / OnFailure
    backoff_limit: int | None = None


@dataclass(frozen=True)
class Pod:
    """What the parts of one pod are built from: its containers (the primary first, then
    those sharing its network namespace) and the decisions taken over the whole source."""

    members: tuple[Container, ...]
    source: Source
    opts: EmitOptions
    placement: Placement
    names: Mapping[str, str]  # source name -> object name, every container of the source
    shared: frozenset[str] = frozenset()  # named volumes several containers mount
    by_source: Mapping[str, Container] = field(default_factory=dict)
    group_of: Mapping[str, str] = field(default_factory=dict)  # source name -> pod primary
    groups: Mapping[str, Sequence[Container]] = field(default_factory=dict)  # primary -> pod
    aliases: tuple[tuple[str, str], ...] = ()  # (Service name, alias it stands for)

    # derived once (every object's metadata asks); read-only: the documents of the pod
    # share them (yaml_out writes each occurrence in full, and nothing changes a built
    # document), which keeps the converted output small in memory
    primary: Container = field(init=False, repr=False, compare=False)
    name: str = field(init=False, repr=False, compare=False)
    ns: str = field(init=False, repr=False, compare=False)
    labels: Mapping[str, str] = field(init=False, repr=False, compare=False)
    selector: Mapping[str, str] = field(init=False, repr=False, compare=False)
    annotations: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = self.members[0]
        name = self.names[c.source_name]
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": MANAGED_BY}
        if self.source.project:
            labels["app.kubernetes.io/part-of"] = sanitize(self.source.project)
        annotations = {
            "hydra.io/source": f"{c.source_file}#{c.source_name}",
            "hydra.io/source-container": c.source_name,
        }
        if self.source.host:
            annotations["hydra.io/source-host"] = self.source.host
        derived = {
            "primary": c,
            "name": name,
            "ns": self.opts.namespace,
            "labels": labels,
            "selector": {"app.kubernetes.io/name": name},
            "annotations": annotations,
        }
        for key, value in derived.items():
            object.__setattr__(self, key, value)


class _Said:
    """The notes one part function collects (local to one call, never shared)."""

    def __init__(self) -> None:
        self.notes: list[Note] = []

    def __call__(self, kind: NoteKind, key: str, message: str) -> None:
        self.notes.append(Note(kind, key, message))

    def all(self) -> Notes:
        return tuple(self.notes)


def dns_label(text: str) -> bool:
    # kube_names' pattern ends in `$`, which also accepts a trailing newline
    return is_dns1123_label(text) and "\n" not in text


_KUBELET_DOLLAR = re.compile(r"\$(?=[$(])")


def escape(text: str) -> str:
    """The kubelet expands $(VAR) in env, command and args, and reduces `$$` to `$`
    (Container.command: "Double $$ are reduced to a single $", Kubernetes 1.35 schema;
    kubernetes third_party/forked/golang/expansion tryReadVariableName); the engines did
    neither, so every `$` before `$` or `(` is doubled: `$$` stays `$$`, `$(x)` stays."""
    return _KUBELET_DOLLAR.sub("$$", text)


def meta(
    name: str, ns: str, labels: Mapping[str, str], annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    # shared, not copied (see Pod): never changed once in a document
    out: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels}
    if annotations:
        out["annotations"] = annotations
    return out


# one string per port and protocol, shared by every object that names it
@functools.lru_cache(maxsize=4096)
def port_name(protocol: str, port: int) -> str:
    return f"{protocol.lower()}-{port}"


def volume_name(target: str, taken: AbstractSet[str]) -> str:
    """A pod volume name for `target` that is not in `taken`."""
    base = sanitize(target.strip("/").replace("/", "-") or "root")[:50]
    name, n = base, 2
    while name in taken:
        name = f"{base}-{n}"
        n += 1
    return name


def pvc(
    name: str, ns: str, opts: EmitOptions, labels: Mapping[str, str], volume: str
) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"]}
    if opts.storage_class:
        spec["storageClassName"] = opts.storage_class
    spec["resources"] = {"requests": {"storage": opts.size_of(volume)}}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta(name, ns, labels),
        "spec": spec,
    }


# -- one container -----------------------------------------------------------------


def pull_policy(c: Container) -> tuple[str | None, Notes]:
    said = _Said()
    if c.image_preloaded:
        said(
            "action",
            "imageFile",
            "image comes from imageFile/imageStream: imagePullPolicy Never; preload it on the nodes with services.k3s.images",
        )
        return "Never", said.all()
    if c.pull is None:
        return None, ()
    if c.pull == "newer":
        said("changed", "pull", "pull = newer: Always (the registry is asked on every start)")
    return _PULL_POLICY.get(c.pull), said.all()


def command_line_notes(c: Container) -> Notes:
    said = _Said()
    for arg in [*(c.entrypoint or ()), *(c.cmd or ())]:
        flag, eq, value = arg.partition("=")
        if eq and value and is_secret(flag.lstrip("-").replace("-", "_"), value):
            said(
                "warning",
                "cmd",
                f"{flag}=… looks like a secret on the command line (it stays in the manifest): pass it through an env var from a Secret instead",
            )
    return said.all()


@dataclass(frozen=True)
class Environment:
    env: list[dict[str, Any]]
    env_from: list[dict[str, Any]]
    secrets: dict[str, dict[str, Any]]  # path under the secrets dir -> Secret
    notes: Notes


def environment(c: Container, name: str, pod: Pod) -> Environment:
    """env (secret-looking values as secretKeyRefs), envFrom for the env files, and the
    Secret documents holding those values (they never land under k8s/)."""
    said = _Said()
    ns = pod.ns
    values = dict(c.environment)
    if "NVIDIA_VISIBLE_DEVICES" in values:
        # with the nvidia runtime this variable would hand the pod GPUs behind the
        # device plugin's back; the plugin sets it for the GPUs it allocates
        del values["NVIDIA_VISIBLE_DEVICES"]
        said(
            "changed",
            "environment",
            "NVIDIA_VISIBLE_DEVICES dropped: the device plugin sets it for the GPUs it allocates",
        )
    plain, secret = split_environment(values)
    env: list[dict[str, Any]] = []
    secret_name = f"{name}-env"
    for key in sorted(values):
        if key in secret:
            env.append(
                {
                    "name": key,
                    "valueFrom": {
                        "secretKeyRef": {"name": secret_name, "key": SECRET_KEY.sub("_", key)}
                    },
                }
            )
        else:
            env.append({"name": key, "value": escape(plain[key])})
    secrets: dict[str, dict[str, Any]] = {}
    if secret:
        secrets[f"{ns}/{secret_name}.yaml"] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta(secret_name, ns, pod.labels),
            "type": "Opaque",
            "stringData": {SECRET_KEY.sub("_", k): secret[k] for k in sorted(secret)},
        }
        said(
            "action",
            "environment",
            f"secret-looking values {sorted(secret)} moved to Secret {secret_name} (written under the secrets directory); run `hydradeploy secrets import` to encrypt it",
        )
    env_from: list[dict[str, Any]] = []
    if c.environment_files:
        files_secret = f"{name}-env-files"
        env_from.append({"secretRef": {"name": files_secret}})
        flags = " ".join(f"--from-env-file={f}" for f in c.environment_files)
        said(
            "action",
            "environmentFiles",
            f"Secret {files_secret} from the env files (never read by the converter): on the host, `kubectl -n {ns} create secret generic {files_secret} {flags} --dry-run=client -o yaml > secrets/plain/{ns}/{files_secret}.yaml`, then `hydradeploy secrets import` encrypts it for the cluster",
        )
    return Environment(env, env_from, secrets, said.all())


def all_ports(c: Container) -> list[Port]:
    """The container's ports, published or only exposed, once per port and protocol."""
    seen: dict[tuple[int, str], Port] = {}
    for p in [*c.ports, *c.expose]:
        seen.setdefault((p.container_port, p.protocol), p)
    return [seen[k] for k in sorted(seen)]


def container_ports(c: Container) -> tuple[list[dict[str, Any]], Notes]:
    said = _Said()
    out: list[dict[str, Any]] = []
    host_bound = {
        (p.container_port, p.protocol): p
        for p in c.ports
        if p.specific_ip and p.host_port and not c.host_network
    }
    for p in all_ports(c):
        item: dict[str, Any] = {
            "name": port_name(p.protocol, p.container_port),
            "containerPort": p.container_port,
            "protocol": p.protocol,
        }
        hp = host_bound.get((p.container_port, p.protocol))
        if hp is not None:
            item["hostPort"] = hp.host_port
            item["hostIP"] = hp.host_ip
            said(
                "changed",
                "ports",
                f"{hp.host_ip}:{hp.host_port}→{p.container_port}: hostPort on that address of the pinned node",
            )
        if c.host_network:
            item["hostPort"] = p.container_port
        out.append(item)
    return out, said.all()


def resources(c: Container, source: Source, opts: EmitOptions) -> tuple[dict[str, Any], Notes]:
    said = _Said()
    r = c.resources
    limits: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    if r.cpu_limit:
        limits["cpu"] = r.cpu_limit
    if r.memory_limit:
        limits["memory"] = r.memory_limit
    if r.cpu_request:
        requests["cpu"] = r.cpu_request
    if r.memory_request:
        requests["memory"] = r.memory_request
    for gpu in c.gpus:
        count = gpu.count
        if count is None:
            known = opts.gpu_count(gpu.vendor)
            if known:
                count = known
                said(
                    "converted",
                    "gpus",
                    f"all {gpu.vendor} GPUs ({gpu.origin}) → {count}, the count of host {source.host} in the inventory",
                )
            else:
                count = 1
                why = (
                    f"host {source.host} lists no {gpu.vendor} GPU in the inventory"
                    if source.host
                    else "no --host to look up in the inventory"
                )
                said(
                    "warning",
                    "gpus",
                    f"all {gpu.vendor} GPUs ({gpu.origin}) but the count is unknown ({why}): asking for 1",
                )
        else:
            said("converted", "gpus", f"{count} {gpu.vendor} GPU(s) from {gpu.origin}")
        limits[GPU_RESOURCES[gpu.vendor]] = count
    out: dict[str, Any] = {}
    if limits:
        out["limits"] = {k: limits[k] for k in sorted(limits)}
    if requests:
        out["requests"] = {k: requests[k] for k in sorted(requests)}
    return out, said.all()


@dataclass(frozen=True)
class Volumes:
    volumes: list[dict[str, Any]]  # pod volumes
    mounts: list[dict[str, Any]]  # the container's volumeMounts
    claims: list[dict[str, Any]]  # PVCs (Job) or claim templates (StatefulSet)
    taken: frozenset[str]  # pod volume names used so far, this container's included
    notes: Notes


def volumes(c: Container, name: str, pod: Pod, taken: frozenset[str] = frozenset()) -> Volumes:
    """Pod volumes and mounts of one container; `taken` are the names other containers of
    the pod already use (the result's `taken` adds this container's)."""
    said = _Said()
    used = set(taken)

    def new_name(target: str) -> str:
        n = volume_name(target, used)
        used.add(n)
        return n

    ns, opts, labels = pod.ns, pod.opts, pod.labels
    pod_volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    for m in c.mounts:
        mount: dict[str, Any] = {"name": "", "mountPath": m.target}
        if m.read_only:
            mount["readOnly"] = True
        if m.kind == "bind":
            vname = new_name(m.target)
            host_path = {"path": m.source}
            if m.host_type:
                host_path["type"] = m.host_type
            pod_volumes.append({"name": vname, "hostPath": host_path})
            if m.source == "/nix/store" or m.source.startswith("/nix/store/"):
                said(
                    "warning",
                    "volumes",
                    f"{m.source}: a Nix store path exists only on the NixOS host that built it; the pod is pinned there, and the path changes with every rebuild — prefer a ConfigMap or an image",
                )
            else:
                said(
                    "converted",
                    "volumes",
                    f"{m.source} → hostPath{' (read-only)' if m.read_only else ''} at {m.target}",
                )
        elif m.kind == "volume":
            vol = sanitize(m.source)
            vname = new_name(m.source)
            if m.source in pod.shared:
                pod_volumes.append({"name": vname, "persistentVolumeClaim": {"claimName": vol}})
                said(
                    "converted",
                    "volumes",
                    f"named volume {m.source} → shared PersistentVolumeClaim {vol} (_volumes.yaml)",
                )
            elif pod.placement.workload == "Job":
                # a Job has no claim templates: its own claim, named after the pod
                claim = f"{vname}-{name}"
                pod_volumes.append({"name": vname, "persistentVolumeClaim": {"claimName": claim}})
                claims.append(pvc(claim, ns, opts, labels, m.source))
                said(
                    "converted",
                    "volumes",
                    f"named volume {m.source} → PersistentVolumeClaim {claim}, {opts.size_of(m.source)}",
                )
            else:
                claims.append(pvc(vname, ns, opts, labels, m.source))
                said(
                    "converted",
                    "volumes",
                    f"named volume {m.source} → volumeClaimTemplate {vname} (PVC {vname}-{name}-0), {opts.size_of(m.source)}",
                )
            said(
                "action",
                "volumes",
                f"copy the data of volume {m.source} (on the old host under {opts.volume_root}/{m.source}/_data) into the new claim before first start",
            )
        elif m.kind == "tmpfs":
            vname = new_name(m.target)
            empty: dict[str, Any] = {"medium": "Memory"}
            if m.size:
                empty["sizeLimit"] = m.size
            pod_volumes.append({"name": vname, "emptyDir": empty})
            said("converted", "volumes", f"tmpfs {m.target} → emptyDir in memory")
        else:
            vname = new_name(m.target)
            pod_volumes.append({"name": vname, "emptyDir": {}})
            said(
                "changed",
                "volumes",
                f"anonymous volume {m.target} → emptyDir (lost when the pod is deleted)",
            )
        mount["name"] = vname
        mounts.append(mount)
    if c.resources.shm_size:
        vname = new_name("dshm")
        pod_volumes.append(
            {"name": vname, "emptyDir": {"medium": "Memory", "sizeLimit": c.resources.shm_size}}
        )
        mounts.append({"name": vname, "mountPath": "/dev/shm"})
        said("converted", "shm-size", f"/dev/shm of {c.resources.shm_size} → emptyDir in memory")
    for dev in c.devices:
        vname = new_name(f"dev-{dev.host_path}")
        pod_volumes.append({"name": vname, "hostPath": {"path": dev.host_path}})
        mounts.append({"name": vname, "mountPath": dev.container_path or dev.host_path})
        hint = (
            " (video acceleration: install the Intel or AMD GPU device plugin and request its resource instead)"
            if dev.host_path.startswith("/dev/dri")
            else ""
        )
        if c.privileged:
            said("converted", "devices", f"{dev.host_path} → hostPath (privileged container)")
        else:
            said(
                "warning",
                "devices",
                f"{dev.host_path} → hostPath; the device cgroup blocks it unless the container is privileged or a device plugin provides it{hint}",
            )
    for kind, items in (("secret", c.secret_files), ("configMap", c.config_files)):
        for ref, target in items:
            obj = f"{sanitize(pod.source.project or ns)}-{sanitize(ref)}"
            vname = new_name(f"{kind}-{ref}")
            key = SECRET_KEY.sub("_", ref)
            ref_key = "secretName" if kind == "secret" else "name"
            pod_volumes.append({"name": vname, kind: {ref_key: obj}})
            mounts.append({"name": vname, "mountPath": target, "subPath": key, "readOnly": True})
    return Volumes(pod_volumes, mounts, claims, frozenset(used), said.all())


def probes(c: Container) -> tuple[dict[str, Any], Notes]:
    hc = c.healthcheck
    if hc is None or not hc.command:
        return {}, ()
    said = _Said()
    probe: dict[str, Any] = {"exec": {"command": list(hc.command)}}
    # the engines' defaults, also for 0: 30 s, 30 s, 3 (moby daemon/health.go
    # defaultProbeInterval/Timeout/Retries, 02483258; podman libpod/define/healthchecks.go
    # DefaultHealthCheckInterval/Timeout/Retries, c6580b4a)
    probe["periodSeconds"] = hc.interval_s or 30
    probe["timeoutSeconds"] = hc.timeout_s or 30
    probe["failureThreshold"] = hc.retries or 3
    said(
        "converted",
        "healthcheck",
        "health check → readinessProbe (like the engines, an unhealthy container is not restarted; it just stops receiving Service traffic)",
    )
    out = {"readinessProbe": probe}
    if hc.start_period_s:
        # Container.startupProbe: "no other probes are executed until this completes
        # successfully. If this probe fails, the Pod will be restarted"; Probe
        # periodSeconds / failureThreshold (Kubernetes 1.35 API schema,
        # kubernetes-validate 1.37.0). The start period's failures do not count,
        # then `retries` more, as the engines count them.
        # during the start period moby probes every start_interval (the compose front end
        # fills in its 5 s default), podman every interval (health-start-period.md);
        # afterwards both need `retries` failures `interval` apart (moby daemon/health.go
        # monitor/handleProbeResult, 02483258): the same deadline in tries of `period`
        period = hc.start_interval_s or probe["periodSeconds"]
        after = -(-probe["failureThreshold"] * probe["periodSeconds"] // period)
        threshold = -(-hc.start_period_s // period) + after
        out["startupProbe"] = {
            "exec": {"command": list(hc.command)},
            "periodSeconds": period,
            "timeoutSeconds": probe["timeoutSeconds"],
            "failureThreshold": threshold,
        }
        said(
            "changed",
            "healthcheck",
            f"start period {hc.start_period_s}s → startupProbe ({threshold} tries every {period}s): readiness waits for it; a container still unhealthy after that is restarted, where the engines only marked it unhealthy",
        )
    return out, said.all()


def security_context(c: Container) -> tuple[dict[str, Any], Notes]:
    said = _Said()
    sc: dict[str, Any] = {}
    if c.privileged:
        sc["privileged"] = True
        said("warning", "privileged", "privileged: full access to the node")
    caps: dict[str, Any] = {}
    if c.cap_add:
        caps["add"] = sorted(set(c.cap_add))
    if c.cap_drop:
        caps["drop"] = sorted(set(c.cap_drop))
    if caps:
        sc["capabilities"] = caps
    if c.read_only_root:
        sc["readOnlyRootFilesystem"] = True
    if c.user:
        m = _NUMERIC_USER.match(c.user)
        if m:
            sc["runAsUser"] = int(m.group(1))
            if m.group(2) is not None:
                sc["runAsGroup"] = int(m.group(2))
        else:
            said(
                "lost",
                "user",
                f"user {c.user!r} is a name: Kubernetes needs a numeric UID (runAsUser); the image's default user runs",
            )
    return sc, said.all()


@dataclass(frozen=True)
class ContainerPart:
    container: dict[str, Any]
    volumes: Volumes
    secrets: dict[str, dict[str, Any]]
    notes: Notes


def container(c: Container, pod: Pod, taken: frozenset[str] = frozenset()) -> ContainerPart:
    """One container of the pod spec, with the pod volumes and Secrets it needs."""
    name = pod.names[c.source_name]
    out: dict[str, Any] = {"name": name, "image": c.image}
    policy, pull_notes = pull_policy(c)
    if policy:
        out["imagePullPolicy"] = policy
    if c.entrypoint is not None:
        out["command"] = [escape(a) for a in c.entrypoint]
    if c.cmd is not None:
        out["args"] = [escape(a) for a in c.cmd]
    if c.workdir:
        out["workingDir"] = c.workdir
    env = environment(c, name, pod)
    if env.env:
        out["env"] = env.env
    if env.env_from:
        out["envFrom"] = env.env_from
    ports, port_notes = container_ports(c)
    if ports:
        out["ports"] = ports
    res, res_notes = resources(c, pod.source, pod.opts)
    if res:
        out["resources"] = res
    vols = volumes(c, name, pod, taken)
    if vols.mounts:
        out["volumeMounts"] = vols.mounts
    probe, probe_notes = probes(c)
    out.update(probe)
    sc, sc_notes = security_context(c)
    if sc:
        out["securityContext"] = sc
    notes = (
        pull_notes
        + command_line_notes(c)
        + env.notes
        + port_notes
        + res_notes
        + vols.notes
        + probe_notes
        + sc_notes
    )
    return ContainerPart(out, vols, env.secrets, notes)


def wait_containers(c: Container, pod: Pod) -> tuple[list[dict[str, Any]], Notes]:
    """initContainers that wait for the pods `c` depends on to answer on a TCP port."""
    said = _Said()
    out: list[dict[str, Any]] = []
    own_pod = pod.group_of.get(c.source_name)
    for dep in sorted(set(c.depends_on)):
        target = pod.by_source.get(dep)
        if target is None:
            continue
        dep_pod = pod.group_of.get(dep, dep)
        if dep_pod == own_pod:
            continue  # same pod: its containers start together, nothing to wait for
        dep_name = pod.names[dep]
        # a pod's ports are served by all its containers (shared network)
        dep_members = pod.groups.get(dep_pod) or [target]
        ports = sorted(
            {
                (p.container_port, p.protocol)
                for m in dep_members
                for p in [*m.ports, *m.expose]
                if p.protocol == "TCP"
            }
        )
        if not ports:
            said(
                "lost",
                "dependsOn",
                f"{dep} publishes no TCP port, so nothing to wait for: start order not enforced (annotation hydra.io/depends-on)",
            )
            continue
        host = f"{dep_name}.{pod.ns}.svc.cluster.local"
        port = ports[0][0]
        out.append(
            {
                "name": f"wait-for-{dep_name}"[:63].rstrip("-"),
                "image": WAIT_IMAGE,
                "command": [
                    "sh",
                    "-c",
                    f"until nc -z -w 2 {host} {port}; do echo waiting for {host}:{port}; sleep 2; done",
                ],
                "resources": {"limits": {"cpu": "50m", "memory": "16Mi"}},
            }
        )
        said(
            "converted",
            "dependsOn",
            f"waits for {dep} with an initContainer (TCP {dep_name}:{port} answers once it is Ready)",
        )
    return out, said.all()


# -- the pod -------------------------------------------------------------------------


def pin(pod: Pod) -> tuple[dict[str, str] | None, Notes]:
    """The nodeSelector that keeps the pod on the node holding its data (placement.pin
    says why), or None."""
    if not pod.placement.pin:
        return None, ()
    reasons = ", ".join(pod.placement.pin)
    host = pod.source.host
    if host:
        return {"kubernetes.io/hostname": host}, (
            Note("converted", "nodeSelector", f"pinned to node {host}: {reasons}"),
        )
    return None, (
        Note(
            "warning",
            "nodeSelector",
            f"NOT pinned to a node ({reasons}); pass --host NAME so the pod runs where the data is",
        ),
    )


def pod_spec(
    pod: Pod,
    containers: list[dict[str, Any]],
    pod_volumes: list[dict[str, Any]],
    init: list[dict[str, Any]],
) -> tuple[dict[str, Any], Notes]:
    """The pod spec around its containers, volumes and wait containers."""
    said = _Said()
    c = pod.primary
    members = pod.members
    spec: dict[str, Any] = {}
    if pod.placement.restart_policy:
        spec["restartPolicy"] = pod.placement.restart_policy
    # PodSpec.enableServiceLinks "Defaults to true" (Kubernetes 1.35 API schema):
    # it injects *_PORT/*_SERVICE_HOST variables that docker never set and that
    # clash with apps reading e.g. REDIS_PORT as a number
    spec["enableServiceLinks"] = False
    if any(g.vendor == "nvidia" for m in members for g in m.gpus):
        spec["runtimeClassName"] = NVIDIA_RUNTIME_CLASS
    if any(m.host_network for m in members):
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
        said("converted", "network", "host network → hostNetwork with ClusterFirstWithHostNet DNS")
    if c.hostname:
        hostname = c.hostname if dns_label(c.hostname) else sanitize(c.hostname)
        if hostname != c.hostname:
            said("changed", "hostname", f"hostname {c.hostname!r} → {hostname!r} (DNS-1123 label)")
        spec["hostname"] = hostname
    add_hosts = [h for m in members for h in m.add_hosts]
    if add_hosts:
        by_ip: dict[str, list[str]] = {}
        for host, ip in add_hosts:
            by_ip.setdefault(ip, []).append(host)
        spec["hostAliases"] = [
            {"ip": ip, "hostnames": sorted(set(by_ip[ip]))} for ip in sorted(by_ip)
        ]
    if c.dns:
        servers = list(dict.fromkeys(c.dns))
        if len(servers) > 2:
            said(
                "changed",
                "dns",
                f"only 2 extra nameservers fit beside the cluster DNS; dropped {servers[2:]}",
            )
        spec["dnsConfig"] = {"nameservers": servers[:2]}
        said(
            "changed",
            "dns",
            "extra nameservers added after the cluster DNS (dnsPolicy stays ClusterFirst so Service names resolve)",
        )
    groups = [int(g) for g in c.group_add if g.isdigit()]
    named = [g for g in c.group_add if not g.isdigit()]
    if named:
        said(
            "lost",
            "group-add",
            f"groups {named} are names: Kubernetes needs numeric GIDs (supplementalGroups); the device plugin grants GPU device access itself",
        )
    pod_sc: dict[str, Any] = {}
    if groups:
        pod_sc["supplementalGroups"] = sorted(set(groups))
    if c.sysctls:
        pod_sc["sysctls"] = [{"name": k, "value": c.sysctls[k]} for k in sorted(c.sysctls)]
    if pod_sc:
        spec["securityContext"] = pod_sc
    if c.sysctls:
        unsafe = sorted(k for k in c.sysctls if k not in SAFE_SYSCTLS)
        if unsafe:
            said(
                "warning",
                "sysctl",
                f"unsafe sysctls {unsafe} need the kubelet's --allowed-unsafe-sysctls",
            )
    if c.stop_grace_s:
        spec["terminationGracePeriodSeconds"] = c.stop_grace_s
    if c.registry_login:
        secret = f"regcred-{sanitize(c.registry_login.split('://')[-1])}"
        spec["imagePullSecrets"] = [{"name": secret}]
        said(
            "action",
            "login",
            f'registry login → imagePullSecrets {secret}: kubectl -n {pod.ns} create secret docker-registry {secret} --docker-server={c.registry_login} --docker-username=USER --docker-password="$(cat PASSWORD_FILE)"',
        )
    selector, pin_notes = pin(pod)
    if selector is not None:
        spec["nodeSelector"] = selector
    if init:
        spec["initContainers"] = list({w["name"]: w for w in init}.values())
    spec["containers"] = containers
    if pod_volumes:
        spec["volumes"] = pod_volumes
    return spec, said.all() + pin_notes


# -- Services ----------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    docs: list[dict[str, Any]]
    published: tuple[tuple[ServiceKind, int, str], ...]  # (Service type, port, protocol)
    notes: Notes

    @property
    def load_balancer(self) -> bool:
        """Publishes through a LoadBalancer Service (k3s ServiceLB)."""
        return any(kind == "LoadBalancer" for kind, _, _ in self.published)


def services(pod: Pod) -> Services:
    """The pod's Service named after it (and one per alias), plus NodePort and
    LoadBalancer Services for the ports the source published on the host."""
    said = _Said()
    name, ns = pod.name, pod.ns
    labels, annotations = pod.labels, pod.annotations
    host_network = any(c.host_network for c in pod.members)
    seen: dict[tuple[int, str], Port] = {}
    for c in pod.members:
        for p in all_ports(c):
            seen.setdefault((p.container_port, p.protocol), p)
    ports = [seen[k] for k in sorted(seen)]
    docs: list[dict[str, Any]] = []
    # Every workload gets a Service named after it: on a compose or podman network
    # every container is reachable by name on any port. Without a known port the
    # Service is headless (clusterIP None, no ports): DNS then answers with the pod
    # IPs, so every port works as before (headless Services without ports get
    # endpoints and DNS records since kubernetes/kubernetes#67622, v1.12;
    # website content/en/docs/concepts/services-networking/service.md
    # "Headless Services / With selectors").
    spec: dict[str, Any] = {}
    if pod.placement.workload == "StatefulSet" or not ports:
        spec["clusterIP"] = "None"
    else:
        spec["type"] = "ClusterIP"
    spec["selector"] = pod.selector
    if ports:
        spec["ports"] = [
            {
                "name": port_name(p.protocol, p.container_port),
                "port": p.container_port,
                "targetPort": p.container_port,
                "protocol": p.protocol,
            }
            for p in ports
        ]
    else:
        said(
            "converted",
            "service",
            f"no port known: headless Service {name} (DNS answers with the pod IPs, every port reachable)",
        )
    for service_name in [name, *(s for s, _ in pod.aliases)]:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(service_name, ns, labels, annotations),
                "spec": spec,  # the alias Services share it (see Pod)
            }
        )
    for service_name, alias in pod.aliases:
        said("converted", "aliases", f"also reachable as {alias!r}: Service {service_name}")
    node_ports: list[dict[str, Any]] = []
    lb_ports: list[dict[str, Any]] = []
    published: list[tuple[ServiceKind, int, str]] = []
    for p in [p for c in pod.members for p in c.ports]:
        if p.host_port is None and not p.random_host_port:
            continue
        shown = f"{p.host_ip + ':' if p.host_ip else ''}{p.host_port or ''}→{p.container_port}/{p.protocol.lower()}"
        if p.loopback:
            said(
                "changed",
                "ports",
                f"{shown}: bound to loopback, so not exposed beyond the node: reachable in the cluster as {name}:{p.container_port}; use kubectl port-forward for local access",
            )
        elif host_network:
            if p.host_port not in (None, p.container_port):
                said(
                    "changed",
                    "ports",
                    f"{shown}: host network, so the container's own port {p.container_port} is used",
                )
        elif p.specific_ip:
            continue  # hostPort, handled with the container ports
        elif p.random_host_port:
            node_ports.append(
                {
                    "name": port_name(p.protocol, p.container_port),
                    "port": p.container_port,
                    "targetPort": p.container_port,
                    "protocol": p.protocol,
                }
            )
            said("changed", "ports", f"{shown}: random host port → NodePort picked by the cluster")
        elif p.host_port is not None and p.host_port in NODEPORT_RANGE:
            node_ports.append(
                {
                    "name": port_name(p.protocol, p.host_port),
                    "port": p.host_port,
                    "targetPort": p.container_port,
                    "nodePort": p.host_port,
                    "protocol": p.protocol,
                }
            )
            said("converted", "ports", f"{shown}: NodePort {p.host_port} on every node")
            published.append(("NodePort", p.host_port, ""))
        else:
            assert p.host_port is not None
            lb_ports.append(
                {
                    "name": port_name(p.protocol, p.host_port),
                    "port": p.host_port,
                    "targetPort": p.container_port,
                    "protocol": p.protocol,
                }
            )
            published.append(("LoadBalancer", p.host_port, p.protocol))
            if (p.host_port, p.protocol) in K3S_PORTS:
                said(
                    "warning",
                    "ports",
                    f"{shown}: port {p.host_port}/{p.protocol.lower()} is k3s's own ({K3S_PORTS[(p.host_port, p.protocol)]}); ServiceLB cannot bind it",
                )
            said(
                "converted",
                "ports",
                f"{shown}: LoadBalancer (k3s ServiceLB) on port {p.host_port} of the nodes",
            )
    for suffix, kind, items in (
        ("nodeport", "NodePort", node_ports),
        ("lb", "LoadBalancer", lb_ports),
    ):
        if not items:
            continue
        unique = {(i["port"], i["protocol"]): i for i in items}
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(f"{name}-{suffix}", ns, labels, annotations),
                "spec": {
                    "type": kind,
                    "selector": pod.selector,
                    "ports": [unique[k] for k in sorted(unique)],
                },
            }
        )
    return Services(docs, tuple(published), said.all())


# -- the workload --------------------------------------------------------------------


def label_annotations(c: Container) -> tuple[dict[str, str], Notes]:
    """Container labels become pod template annotations (they select nothing here)."""
    said = _Said()
    labels = c.labels
    out: dict[str, str] = {}
    for key in sorted(labels):
        if label_key_error(key) is None:
            out[key] = labels[key]
        else:
            said("lost", "labels", f"label {key!r} is not a valid annotation key")
    ingress = sorted(
        k
        for k in labels
        if k.startswith(("traefik.", "caddy", "homepage.")) or "virtual_host" in k.lower()
    )
    if ingress:
        said(
            "action",
            "labels",
            f"reverse-proxy labels {ingress[:3]}{'…' if len(ingress) > 3 else ''} kept as pod annotations: write an Ingress (or IngressRoute) for them",
        )
    if out:
        said("converted", "labels", "container labels → pod template annotations")
    return out, said.all()


def workload(
    pod: Pod, spec: dict[str, Any], claims: list[dict[str, Any]]
) -> tuple[dict[str, Any], Notes]:
    """The Deployment, StatefulSet or Job (placement.workload) running the pod spec."""
    said = _Said()
    c = pod.primary
    placement = pod.placement
    annotations = dict(pod.annotations)
    if c.depends_on:
        annotations["hydra.io/depends-on"] = ",".join(
            sorted(pod.names.get(d, d) for d in set(c.depends_on))
        )
    template_annotations, label_notes = label_annotations(c)
    template: dict[str, Any] = {"metadata": {"labels": pod.labels}}
    if template_annotations:
        template["metadata"]["annotations"] = template_annotations
    template["spec"] = spec
    kind = placement.workload
    if kind == "Job":
        return job(pod, template, annotations), label_notes
    body: dict[str, Any] = {
        "replicas": c.replicas,
        "selector": {"matchLabels": pod.selector},
    }
    if kind == "StatefulSet":
        body["serviceName"] = pod.name
        body["template"] = template
        body["volumeClaimTemplates"] = [
            {
                "metadata": {"name": t["metadata"]["name"], "labels": t["metadata"]["labels"]},
                "spec": t["spec"],
            }
            for t in claims
        ]
        said(
            "converted",
            "workload",
            "StatefulSet: it owns a named volume (a claim kept across restarts; updates stop the old pod before starting the new one)",
        )
    else:
        if placement.recreate:
            body["strategy"] = {"type": "Recreate"}
            said(
                "converted",
                "strategy",
                f"strategy Recreate: {', '.join(placement.recreate)} cannot be held by two pods at once",
            )
        else:
            body["strategy"] = {"type": "RollingUpdate"}
        body["template"] = template
    doc = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": meta(pod.name, pod.ns, pod.labels, annotations),
        "spec": body,
    }
    return doc, label_notes + said.all()


def job(pod: Pod, template: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    """A one-shot container (emit.one_shot): a Job runs it to completion once."""
    c = pod.primary
    spec: dict[str, Any] = {}
    if pod.placement.backoff_limit is not None:
        spec["backoffLimit"] = pod.placement.backoff_limit
    if c.replicas > 1:
        spec["completions"] = spec["parallelism"] = c.replicas
    if c.replicas == 0:
        spec["suspend"] = True
    spec["template"] = template
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(pod.name, pod.ns, pod.labels, annotations),
        "spec": spec,
    }


def restart_notes(c: Container, placement: Placement) -> Notes:
    r = c.restart
    if placement.workload == "Job":
        retries = (
            "no retry"
            if placement.backoff_limit == 0
            else f"{placement.backoff_limit} retries"
            if placement.backoff_limit is not None
            else "the Job default of 6 retries (compose: unlimited)"
        )
        why = f"restart {r!r}" if r else "another service waits for it to complete"
        return (
            Note(
                "converted",
                "restart",
                f"{why}: runs once as a Job (restartPolicy {placement.restart_policy}, {retries})",
            ),
        )
    if r and r.split(":")[0] in ("no", "on-failure"):
        return (
            Note(
                "changed",
                "restart",
                f"restart {r!r}: Deployments and StatefulSets always restart containers",
            ),
        )
    return ()


# -- the whole pod -------------------------------------------------------------------


@dataclass(frozen=True)
class PodObjects:
    docs: list[dict[str, Any]]  # the file's documents: a Job's claims, Services, workload
    secrets: dict[str, dict[str, Any]]  # path under the secrets dir -> Secret
    notes: dict[str, Notes]  # source name -> notes, each container of the pod
    published: tuple[tuple[ServiceKind, int, str], ...]
    load_balancer: bool
    pinned_node: str | None  # the nodeSelector's node, when the pod is pinned


def build_pod(pod: Pod) -> PodObjects:
    """Every object of one pod, from its parts."""
    taken: frozenset[str] = frozenset()
    containers: list[dict[str, Any]] = []
    pod_volumes: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    secrets: dict[str, dict[str, Any]] = {}
    notes: dict[str, Notes] = {}
    port_names: set[str] = set()
    for c in pod.members:
        part = container(c, pod, taken)
        taken = part.volumes.taken
        spec = dict(part.container)
        # port names are unique within a pod; a shared network has each port once
        ports = [p for p in spec.get("ports", []) if p["name"] not in port_names]
        port_names.update(p["name"] for p in ports)
        if ports:
            spec["ports"] = ports
        else:
            spec.pop("ports", None)
        containers.append(spec)
        pod_volumes += part.volumes.volumes
        claims += part.volumes.claims
        secrets.update(part.secrets)
        notes[c.source_name] = part.notes
        if c is not pod.primary:
            notes[c.source_name] += (
                Note(
                    "converted",
                    "network_mode",
                    f"shares the network of {pod.primary.source_name}: a container of pod {pod.name} (localhost between them, as before)",
                ),
            )
    init: list[dict[str, Any]] = []
    pod_notes: dict[str, Notes] = {}
    for c in pod.members:
        waits, wait_notes = wait_containers(c, pod)
        init += waits
        pod_notes[c.source_name] = wait_notes
    spec, spec_notes = pod_spec(pod, containers, pod_volumes, init)
    svc = services(pod)
    doc, workload_notes = workload(pod, spec, claims)
    primary = pod.primary.source_name
    notes[primary] += (
        spec_notes
        + pod_notes[primary]
        + svc.notes
        + workload_notes
        + restart_notes(pod.primary, pod.placement)
    )
    for c in pod.members[1:]:
        notes[c.source_name] += pod_notes[c.source_name]
    job_claims = claims if pod.placement.workload == "Job" else []
    selector = spec.get("nodeSelector") or {}
    return PodObjects(
        [*job_claims, *svc.docs, doc],
        secrets,
        notes,
        svc.published,
        svc.load_balancer,
        selector.get("kubernetes.io/hostname"),
    )
