"""The one emitter: neutral model → Kubernetes objects (plain dicts), plus the Secrets
that must not land under k8s/ and the notes the report shows.

Every rule here is listed, with its reason, in docs/converter.md; the note texts say the
same thing to the user per container.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from hydradeploy.convert.model import Container, Note, Port, Source
from hydradeploy.convert.names import assign_names, sanitize
from hydradeploy.convert.secrets_split import is_secret, split_environment
from hydradeploy.kube_names import is_dns1123_label, label_key_error

MANAGED_BY = "hydradeploy"
WAIT_IMAGE = "busybox:1.37"
NODEPORT_RANGE = range(30000, 32768)
NVIDIA_RUNTIME_CLASS = "nvidia"
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
SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
# sysctls the kubelet allows without --allowed-unsafe-sysctls (Kubernetes 1.34)
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
_SECRET_KEY = re.compile(r"[^-._a-zA-Z0-9]")
_NUMERIC_USER = re.compile(r"^(\d+)(?::(\d+))?\Z")


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


@dataclass(slots=True)
class ContainerResult:
    name: str
    source_name: str
    source_file: str
    workload: str  # Deployment, StatefulSet, Job, or "in pod of NAME"
    file: str  # relative to the output root
    objects: list[str] = field(default_factory=list)  # "Kind/name"
    notes: list[Note] = field(default_factory=list)
    load_balancer: bool = False  # publishes through a LoadBalancer Service (ServiceLB)


@dataclass(slots=True)
class Conversion:
    namespace: str
    files: dict[str, list[dict[str, Any]]]  # path under --out → documents
    secrets: dict[str, dict[str, Any]]  # path under the secrets dir → one Secret
    containers: list[ContainerResult]
    notes: list[Note]
    paths: list[str] = field(default_factory=list)  # every file under --out, sorted


def _dns_label(text: str) -> bool:
    # kube_names' pattern ends in `$`, which also accepts a trailing newline
    return is_dns1123_label(text) and "\n" not in text


def _escape(text: str) -> str:
    """The kubelet expands $(VAR) in env, command and args; the engines did not."""
    return text.replace("$(", "$$(")


def _meta(
    name: str, ns: str, labels: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _port_name(protocol: str, port: int) -> str:
    return f"{protocol.lower()}-{port}"


def _volume_name(target: str, used: set[str]) -> str:
    base = sanitize(target.strip("/").replace("/", "-") or "root")[:50]
    name, n = base, 2
    while name in used:
        name = f"{base}-{n}"
        n += 1
    used.add(name)
    return name


FileSink = Callable[[str, list[dict[str, Any]]], None]
WorkloadKind = Literal["Deployment", "StatefulSet", "Job"]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and how one pod runs, decided from the model before any object is built:
    the workload kind, why it is pinned to the data's node, why it cannot roll."""

    workload: WorkloadKind
    pin: tuple[str, ...] = ()
    recreate: tuple[str, ...] = ()
    restart_policy: str | None = None  # Jobs: Never / OnFailure
    backoff_limit: int | None = None


def one_shot(c: Container, awaited: set[str], kind: str) -> tuple[str, int | None] | None:
    """(restartPolicy, backoffLimit) when the container runs to completion, else None.

    Compose `restart: "no"` never restarts and `on-failure[:N]` restarts only on an
    error exit, N times at most (spec 05-services.md "restart", compose-spec 170098ba);
    a service another one waits for with `service_completed_successfully` is one-shot
    too. A Deployment would restart them forever; a Job runs them to completion.
    JobSpec.backoffLimit "Defaults to 6"; JobSpec.template "The only allowed
    template.spec.restartPolicy values are "Never" or "OnFailure"" (Kubernetes 1.35 API
    schema, kubernetes-validate 1.37.0).
    oci-containers run as systemd units, whose restart is not the container's flag."""
    if kind != "compose":
        return None
    r = (c.restart or "").strip()
    if r == "no" or (c.restart is None and c.source_name in awaited):
        return ("Never", 0)
    if r.startswith("on-failure"):
        _, _, n = r.partition(":")
        return ("OnFailure", int(n) if n.isdigit() else None)
    return None


def place(
    members: list[Container], shared: set[str], job: tuple[str, int | None] | None
) -> Placement:
    """The pod's placement from all its containers (a pure function of the model)."""
    pin: list[str] = []
    recreate: list[str] = []
    for c in members:
        if c.gpus:
            recreate.append("GPU")
        if "HSA_OVERRIDE_GFX_VERSION" in c.environment and any(g.vendor == "amd" for g in c.gpus):
            # the override names one GPU generation: the host's (seed mistake 7)
            pin.append("HSA_OVERRIDE_GFX_VERSION is for this host's GPU")
        if c.host_network:
            pin.append("host network")
            recreate.append("host network")
        for p in c.ports:
            if p.specific_ip and p.host_port and not c.host_network:
                pin.append(f"port bound to {p.host_ip}")
                recreate.append("hostPort")
        for m in c.mounts:
            if m.kind == "bind":
                pin.append(f"hostPath {m.source}")
                recreate.append("hostPath")
            elif m.kind == "volume" and m.source in shared:
                recreate.append("shared ReadWriteOnce claim")
        for dev in c.devices:
            pin.append(f"device {dev.host_path}")
            recreate.append("host device")
    own_volumes = any(
        m.kind == "volume" and m.source not in shared for c in members for m in c.mounts
    )
    kind: WorkloadKind = "Job" if job else "StatefulSet" if own_volumes else "Deployment"
    return Placement(
        kind,
        tuple(dict.fromkeys(pin)),
        tuple(dict.fromkeys(recreate)),
        job[0] if job else None,
        job[1] if job else None,
    )


def pod_groups(source: Source, top_notes: list[Note]) -> dict[str, list[Container]]:
    """primary source name -> [primary, containers sharing its network namespace].

    `network_mode: service:X` / `--network=container:X` share X's network namespace
    (spec 05-services.md "network_mode"): they reach each other on localhost and X
    serves their ports, so they must be containers of one Pod."""
    by_name = {c.source_name: c for c in source.containers}

    def root(c: Container) -> Container | None:
        seen: list[str] = []
        while c.network_peer is not None:
            if c.source_name in seen:
                return None
            seen.append(c.source_name)
            peer = by_name.get(c.network_peer)
            if peer is None:
                return None
            c = peer
        return c

    groups: dict[str, list[Container]] = {}
    for c in source.containers:
        r = root(c)
        if r is None:
            top_notes.append(
                Note(
                    "warning",
                    "network_mode",
                    f"{c.source_name}: network of {c.network_peer!r} is not among the converted containers (or a cycle): runs in its own pod",
                )
            )
            c.network_peer = None
            r = c
        group = groups.setdefault(r.source_name, [r])
        if c is not r:
            group.append(c)
    return groups


def convert(source: Source, opts: EmitOptions, on_file: FileSink | None = None) -> Conversion:
    """Build every object. With `on_file`, each file's documents go to it as soon as they
    are built and are not kept (10,000 containers then never sit in memory at once);
    `Conversion.files` then stays empty and `Conversion.paths` lists the files."""
    names, renamed = assign_names([c.source_name for c in source.containers])
    ns = opts.namespace
    top_notes = list(source.notes)
    for original, new in renamed:
        top_notes.append(Note("changed", "name", f"{original!r} → {new!r} (DNS-1123 label)"))
    volume_users = Counter(
        m.source
        for c in source.containers
        for m in {(m.source, m.kind): m for m in c.mounts}.values()
        if m.kind == "volume"
    )
    # a volume is shared when two containers mount it, or when one container runs
    # several replicas (compose `deploy.replicas`): all of them saw the same data
    shared = {v for v, n in volume_users.items() if n > 1} | {
        m.source
        for c in source.containers
        if c.replicas > 1
        for m in c.mounts
        if m.kind == "volume"
    }
    by_source = {c.source_name: c for c in source.containers}
    groups = pod_groups(source, top_notes)
    aliases = _assign_aliases(source, names, top_notes)
    awaited = {d for c in source.containers for d in c.awaits_completion}
    group_of = {m.source_name: primary for primary, ms in groups.items() for m in ms}
    files: dict[str, list[dict[str, Any]]] = {}
    paths: list[str] = []

    def put(path: str, docs: list[dict[str, Any]]) -> None:
        paths.append(path)
        if on_file is None:
            files[path] = docs
        else:
            on_file(path, docs)

    secrets: dict[str, dict[str, Any]] = {}
    results: list[ContainerResult] = []
    lb_ports: Counter[tuple[str, int, str]] = Counter()
    if ns not in SYSTEM_NAMESPACES:
        put(
            f"{ns}/_namespace.yaml",
            [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": ns,
                        "labels": {
                            "app.kubernetes.io/name": ns,
                            "app.kubernetes.io/managed-by": MANAGED_BY,
                        },
                    },
                }
            ],
        )
    if shared:
        claims = []
        for vol in sorted(shared):
            claim = _pvc(
                sanitize(vol),
                ns,
                opts,
                {
                    "app.kubernetes.io/name": sanitize(vol),
                    "app.kubernetes.io/managed-by": MANAGED_BY,
                    "app.kubernetes.io/part-of": sanitize(source.project or ns),
                },
                vol,
            )
            claim["metadata"]["annotations"] = {
                "hydra.io/source": f"{', '.join(source.files)}#volume:{vol}"
            }
            claims.append(claim)
        put(f"{ns}/_volumes.yaml", claims)
        users = sorted(
            c.source_name
            for c in source.containers
            if any(m.kind == "volume" and m.source in shared for m in c.mounts)
        )
        top_notes.append(
            Note(
                "warning",
                "volumes",
                f"named volumes {sorted(shared)} are shared by {users}: standalone ReadWriteOnce claims, so those pods must run on one node (local-path binds them there)",
            )
        )
    used_configs = sorted(
        {ref for c in source.containers for ref, _ in c.config_files} & set(source.config_data)
    )
    if used_configs:
        put(f"{ns}/_configs.yaml", [_config_map(source, ns, ref) for ref in used_configs])
    for c in source.containers:
        if c.source_name not in groups:
            continue  # a container of another one's pod, built with it
        members = groups[c.source_name]
        placement = place(members, shared, one_shot(c, awaited, source.kind))
        builder = _Builder(c, names[c.source_name], source, opts, shared, names, by_source)
        builder.place, builder.group_of, builder.pods = placement, group_of, groups
        builder.aliases = list(aliases.get(c.source_name, []))
        for m in members[1:]:
            member = _Builder(m, names[m.source_name], source, opts, shared, names, by_source)
            member.place, member.group_of, member.pods = placement, group_of, groups
            member.labels, member.selector = builder.labels, builder.selector
            builder.members.append(member)
            builder.aliases.append((names[m.source_name], m.source_name))
            builder.aliases += aliases.get(m.source_name, [])
        docs, secret_docs = builder.build()
        for p in builder.lb_ports:
            lb_ports[p] += 1
        path = f"{ns}/{builder.name}.yaml"
        put(path, docs)
        secrets.update(secret_docs)
        results.append(
            ContainerResult(
                name=builder.name,
                source_name=c.source_name,
                source_file=c.source_file,
                workload=builder.workload,
                file=path,
                objects=[f"{d['kind']}/{d['metadata']['name']}" for d in docs],
                notes=[_in_namespace(n, ns) for n in c.notes] + builder.notes,
                load_balancer=any(kind == "LoadBalancer" for kind, _, _ in builder.lb_ports),
            )
        )
        for member in builder.members:
            results.append(
                ContainerResult(
                    name=member.name,
                    source_name=member.c.source_name,
                    source_file=member.c.source_file,
                    workload=f"in pod of {builder.name}",
                    file=path,
                    notes=[_in_namespace(n, ns) for n in member.c.notes] + member.notes,
                )
            )
    # two pods each asking for every GPU of the host: the second one stays Pending
    for vendor in sorted({g.vendor for c in source.containers for g in c.gpus}):
        greedy = sorted(
            c.source_name
            for c in source.containers
            if any(g.vendor == vendor and g.count is None for g in c.gpus) and c.replicas
        )
        if len(greedy) > 1:
            top_notes.append(
                Note(
                    "warning",
                    "gpus",
                    f"{len(greedy)} containers ({', '.join(greedy[:5])}{', …' if len(greedy) > 5 else ''}) each ask for all {vendor} GPUs of {source.host or 'the host'}: only one of them can be scheduled there at a time",
                )
            )
    for (kind, port, proto), n in sorted(lb_ports.items()):
        if n > 1:
            what = f"{port}/{proto.lower()}" if proto else str(port)
            top_notes.append(
                Note(
                    "warning",
                    "ports",
                    f"{n} containers publish {what} as {kind}; the cluster gives a port to one Service only, the others stay Pending (change a host port)",
                )
            )
    return Conversion(ns, files, secrets, results, top_notes, sorted(paths))


def _is_dns1035(name: str) -> bool:
    """Service names are DNS-1035 labels: a DNS-1123 label that starts with a letter
    (Kubernetes apimachinery validation.IsDNS1035Label)."""
    return _dns_label(name) and name[0].isalpha()


def _assign_aliases(
    source: Source, names: dict[str, str], top_notes: list[Note]
) -> dict[str, list[tuple[str, str]]]:
    """source name -> [(Service name, the alias it stands for)]: one extra Service per
    other name a container answered to, so `http://<alias>:port` keeps resolving.

    Names already taken (workloads and their -lb/-nodeport Services) and aliases claimed
    twice are reported and skipped: one DNS name can point at one pod set only."""
    taken = set(names.values())
    taken |= {f"{n}-{suffix}" for n in names.values() for suffix in ("lb", "nodeport")}
    out: dict[str, list[tuple[str, str]]] = {}
    for c in source.containers:
        own = names[c.source_name]
        for alias, origin in c.aliases:
            if not any(ch.isalnum() for ch in alias):
                continue  # nothing a client could have looked up (`-`, an empty hostname)
            # DNS names are case-insensitive (RFC 4343): `MyDB` is looked up as `mydb`
            wanted = alias.lower()
            service = wanted if _is_dns1035(wanted) else sanitize(alias)
            if service == own or (service, alias) in out.get(c.source_name, []):
                continue
            if service in taken:
                top_notes.append(
                    Note(
                        "warning",
                        "aliases",
                        f"{c.source_name}: {origin} {alias!r} is already the name of another Service; no alias Service for it",
                    )
                )
                continue
            taken.add(service)
            out.setdefault(c.source_name, []).append((service, alias))
            if service != wanted:
                top_notes.append(
                    Note(
                        "changed",
                        "aliases",
                        f"{c.source_name}: {origin} {alias!r} is no DNS-1035 label: its Service is {service!r}; clients must use that name",
                    )
                )
    return out


def _in_namespace(note: Note, ns: str) -> Note:
    """Front ends do not know the namespace; their kubectl hints get it here."""
    if "kubectl create " not in note.message:
        return note
    return Note(
        note.kind, note.key, note.message.replace("kubectl create ", f"kubectl -n {ns} create ")
    )


def _config_map(source: Source, ns: str, ref: str) -> dict[str, Any]:
    """A compose config the converter read, under the name and key the mounts use."""
    name = f"{sanitize(source.project or ns)}-{sanitize(ref)}"
    meta = _meta(
        name,
        ns,
        {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "app.kubernetes.io/part-of": sanitize(source.project or ns),
        },
        {"hydra.io/source": f"{', '.join(source.files)}#config:{ref}"},
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {_SECRET_KEY.sub("_", ref): source.config_data[ref]},
    }


def _pvc(
    name: str, ns: str, opts: EmitOptions, labels: dict[str, str], volume: str
) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"]}
    if opts.storage_class:
        spec["storageClassName"] = opts.storage_class
    spec["resources"] = {"requests": {"storage": opts.size_of(volume)}}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(name, ns, labels),
        "spec": spec,
    }


class _Builder:
    """Builds the objects of one container; collects its notes."""

    def __init__(
        self,
        c: Container,
        name: str,
        source: Source,
        opts: EmitOptions,
        shared: set[str],
        names: dict[str, str],
        by_source: dict[str, Container],
    ) -> None:
        self.c, self.name, self.source, self.opts = c, name, source, opts
        self.shared, self.names, self.by_source = shared, names, by_source
        self.ns = opts.namespace
        self.notes: list[Note] = []
        self.place = Placement("Deployment")
        self.members: list[_Builder] = []  # containers sharing this pod's network
        self.group_of: dict[str, str] = {}  # source name -> primary of its pod
        self.pods: dict[str, list[Container]] = {}  # primary -> the pod's containers
        self.lb_ports: list[tuple[str, int, str]] = []  # (Service type, port, protocol)
        self.aliases: list[tuple[str, str]] = []  # (Service name, alias), see _assign_aliases
        self.labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": MANAGED_BY}
        if source.project:
            self.labels["app.kubernetes.io/part-of"] = sanitize(source.project)
        self.selector = {"app.kubernetes.io/name": name}
        self.annotations = {
            "hydra.io/source": f"{c.source_file}#{c.source_name}",
            "hydra.io/source-container": c.source_name,
        }
        if source.host:
            self.annotations["hydra.io/source-host"] = source.host

    def note(self, kind: Any, key: str, message: str) -> None:
        self.notes.append(Note(kind, key, message))

    # -- the whole container -------------------------------------------------------
    @property
    def workload(self) -> WorkloadKind:
        return self.place.workload

    def build(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """The pod's containers (this one, then those sharing its network), its
        Services and its workload; claims of a Job first. Shared claims are in
        _volumes.yaml, a StatefulSet's own are its volumeClaimTemplates."""
        secret_docs: dict[str, dict[str, Any]] = {}
        used: set[str] = set()
        containers: list[dict[str, Any]] = []
        volumes: list[dict[str, Any]] = []
        port_names: set[str] = set()
        for b in [self, *self.members]:
            container, vols = b._container(secret_docs, used)
            # port names are unique within a pod; a shared network has each port once
            ports = [p for p in container.get("ports", []) if p["name"] not in port_names]
            port_names.update(p["name"] for p in ports)
            if ports:
                container["ports"] = ports
            else:
                container.pop("ports", None)
            containers.append(container)
            volumes += vols
            if b is not self:
                b.note(
                    "converted",
                    "network_mode",
                    f"shares the network of {self.c.source_name}: a container of pod {self.name} (localhost between them, as before)",
                )
        claims = [t for b in [self, *self.members] for t in b.claim_templates]
        pod = self._pod_spec(containers, volumes)
        services = self._services()
        workload = self._workload(pod, claims)
        self._restart_note()
        job_claims = claims if self.workload == "Job" else []
        return [*job_claims, *services, workload], secret_docs

    def _container(
        self, secret_docs: dict[str, dict[str, Any]], used: set[str]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        c = self.c
        container: dict[str, Any] = {"name": self.name, "image": c.image}
        policy = self._pull_policy()
        if policy:
            container["imagePullPolicy"] = policy
        if c.entrypoint is not None:
            container["command"] = [_escape(a) for a in c.entrypoint]
        if c.cmd is not None:
            container["args"] = [_escape(a) for a in c.cmd]
        for arg in [*(c.entrypoint or ()), *(c.cmd or ())]:
            flag, eq, value = arg.partition("=")
            if eq and value and is_secret(flag.lstrip("-").replace("-", "_"), value):
                self.note(
                    "warning",
                    "cmd",
                    f"{flag}=… looks like a secret on the command line (it stays in the manifest): pass it through an env var from a Secret instead",
                )
        if c.workdir:
            container["workingDir"] = c.workdir
        env, env_from = self._environment(secret_docs)
        if env:
            container["env"] = env
        if env_from:
            container["envFrom"] = env_from
        ports = self._container_ports()
        if ports:
            container["ports"] = ports
        resources = self._resources()
        if resources:
            container["resources"] = resources
        volumes, mounts = self._volumes(used)
        if mounts:
            container["volumeMounts"] = mounts
        container.update(self._probes())
        sc = self._security_context()
        if sc:
            container["securityContext"] = sc
        return container, volumes

    def _pull_policy(self) -> str | None:
        c = self.c
        if c.image_preloaded:
            self.note(
                "action",
                "imageFile",
                "image comes from imageFile/imageStream: imagePullPolicy Never; preload it on the nodes with services.k3s.images",
            )
            return "Never"
        if c.pull is None:
            return None
        if c.pull == "newer":
            self.note(
                "changed", "pull", "pull = newer: Always (the registry is asked on every start)"
            )
        return _PULL_POLICY.get(c.pull)

    # -- environment and secrets -------------------------------------------------
    def _environment(
        self, secret_docs: dict[str, dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        environment = dict(self.c.environment)
        if "NVIDIA_VISIBLE_DEVICES" in environment:
            # with the nvidia runtime this variable would hand the pod GPUs behind the
            # device plugin's back; the plugin sets it for the GPUs it allocates
            del environment["NVIDIA_VISIBLE_DEVICES"]
            self.note(
                "changed",
                "environment",
                "NVIDIA_VISIBLE_DEVICES dropped: the device plugin sets it for the GPUs it allocates",
            )
        plain, secret = split_environment(environment)
        env: list[dict[str, Any]] = []
        secret_name = f"{self.name}-env"
        for key in sorted(environment):
            if key in secret:
                env.append(
                    {
                        "name": key,
                        "valueFrom": {
                            "secretKeyRef": {"name": secret_name, "key": _SECRET_KEY.sub("_", key)}
                        },
                    }
                )
            else:
                env.append({"name": key, "value": _escape(plain[key])})
        if secret:
            secret_docs[f"{self.ns}/{secret_name}.yaml"] = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": _meta(secret_name, self.ns, self.labels),
                "type": "Opaque",
                "stringData": {_SECRET_KEY.sub("_", k): secret[k] for k in sorted(secret)},
            }
            self.note(
                "action",
                "environment",
                f"secret-looking values {sorted(secret)} moved to Secret {secret_name} (written under the secrets directory); run `hydradeploy secrets import` to encrypt it",
            )
        env_from: list[dict[str, Any]] = []
        if self.c.environment_files:
            files_secret = f"{self.name}-env-files"
            env_from.append({"secretRef": {"name": files_secret}})
            flags = " ".join(f"--from-env-file={f}" for f in self.c.environment_files)
            self.note(
                "action",
                "environmentFiles",
                f"Secret {files_secret} from the env files (never read by the converter): on the host, `kubectl -n {self.ns} create secret generic {files_secret} {flags} --dry-run=client -o yaml > secrets/plain/{self.ns}/{files_secret}.yaml`, then `hydradeploy secrets import` encrypts it for the cluster",
            )
        return env, env_from

    # -- ports and services --------------------------------------------------------
    def _all_ports(self) -> list[Port]:
        seen: dict[tuple[int, str], Port] = {}
        for p in [*self.c.ports, *self.c.expose]:
            seen.setdefault((p.container_port, p.protocol), p)
        return [seen[k] for k in sorted(seen)]

    def _container_ports(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        host_bound = {
            (p.container_port, p.protocol): p
            for p in self.c.ports
            if p.specific_ip and p.host_port and not self.c.host_network
        }
        for p in self._all_ports():
            item: dict[str, Any] = {
                "name": _port_name(p.protocol, p.container_port),
                "containerPort": p.container_port,
                "protocol": p.protocol,
            }
            hp = host_bound.get((p.container_port, p.protocol))
            if hp is not None:
                item["hostPort"] = hp.host_port
                item["hostIP"] = hp.host_ip
                self.note(
                    "changed",
                    "ports",
                    f"{hp.host_ip}:{hp.host_port}→{p.container_port}: hostPort on that address of the pinned node",
                )
            if self.c.host_network:
                item["hostPort"] = p.container_port
            out.append(item)
        return out

    def _services(self) -> list[dict[str, Any]]:
        pod = [self, *self.members]
        host_network = any(b.c.host_network for b in pod)
        seen: dict[tuple[int, str], Port] = {}
        for b in pod:
            for p in b._all_ports():
                seen.setdefault((p.container_port, p.protocol), p)
        ports = [seen[k] for k in sorted(seen)]
        docs: list[dict[str, Any]] = []
        stateful = self.workload == "StatefulSet"
        # Every workload gets a Service named after it: on a compose or podman network
        # every container is reachable by name on any port. Without a known port the
        # Service is headless (clusterIP None, no ports): DNS then answers with the pod
        # IPs, so every port works as before (headless Services without ports get
        # endpoints and DNS records since kubernetes/kubernetes#67622, v1.12;
        # website content/en/docs/concepts/services-networking/service.md
        # "Headless Services / With selectors").
        spec: dict[str, Any] = {}
        if stateful or not ports:
            spec["clusterIP"] = "None"
        else:
            spec["type"] = "ClusterIP"
        spec["selector"] = dict(self.selector)
        if ports:
            spec["ports"] = [
                {
                    "name": _port_name(p.protocol, p.container_port),
                    "port": p.container_port,
                    "targetPort": p.container_port,
                    "protocol": p.protocol,
                }
                for p in ports
            ]
        else:
            self.note(
                "converted",
                "service",
                f"no port known: headless Service {self.name} (DNS answers with the pod IPs, every port reachable)",
            )
        for i, service_name in enumerate([self.name, *(s for s, _ in self.aliases)]):
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": _meta(service_name, self.ns, self.labels, self.annotations),
                    # each document its own dicts (no YAML anchors between them)
                    "spec": copy.deepcopy(spec) if i else spec,
                }
            )
        for service_name, alias in self.aliases:
            self.note(
                "converted", "aliases", f"also reachable as {alias!r}: Service {service_name}"
            )
        node_ports: list[dict[str, Any]] = []
        lb_ports: list[dict[str, Any]] = []
        for p in [p for b in pod for p in b.c.ports]:
            shown = f"{p.host_ip + ':' if p.host_ip else ''}{p.host_port or ''}→{p.container_port}/{p.protocol.lower()}"
            if p.host_port is None and not p.random_host_port:
                continue
            if p.loopback:
                self.note(
                    "changed",
                    "ports",
                    f"{shown}: bound to loopback, so not exposed beyond the node: reachable in the cluster as {self.name}:{p.container_port}; use kubectl port-forward for local access",
                )
            elif host_network:
                if p.host_port not in (None, p.container_port):
                    self.note(
                        "changed",
                        "ports",
                        f"{shown}: host network, so the container's own port {p.container_port} is used",
                    )
            elif p.specific_ip:
                continue  # hostPort, handled with the container ports
            elif p.random_host_port:
                node_ports.append(
                    {
                        "name": _port_name(p.protocol, p.container_port),
                        "port": p.container_port,
                        "targetPort": p.container_port,
                        "protocol": p.protocol,
                    }
                )
                self.note(
                    "changed",
                    "ports",
                    f"{shown}: random host port → NodePort picked by the cluster",
                )
            elif p.host_port is not None and p.host_port in NODEPORT_RANGE:
                node_ports.append(
                    {
                        "name": _port_name(p.protocol, p.host_port),
                        "port": p.host_port,
                        "targetPort": p.container_port,
                        "nodePort": p.host_port,
                        "protocol": p.protocol,
                    }
                )
                self.note("converted", "ports", f"{shown}: NodePort {p.host_port} on every node")
                self.lb_ports.append(("NodePort", p.host_port, ""))
            else:
                assert p.host_port is not None
                lb_ports.append(
                    {
                        "name": _port_name(p.protocol, p.host_port),
                        "port": p.host_port,
                        "targetPort": p.container_port,
                        "protocol": p.protocol,
                    }
                )
                self.lb_ports.append(("LoadBalancer", p.host_port, p.protocol))
                if (p.host_port, p.protocol) in K3S_PORTS:
                    self.note(
                        "warning",
                        "ports",
                        f"{shown}: port {p.host_port}/{p.protocol.lower()} is k3s's own ({K3S_PORTS[(p.host_port, p.protocol)]}); ServiceLB cannot bind it",
                    )
                self.note(
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
                    "metadata": _meta(
                        f"{self.name}-{suffix}", self.ns, self.labels, self.annotations
                    ),
                    "spec": {
                        "type": kind,
                        "selector": dict(self.selector),
                        "ports": [unique[k] for k in sorted(unique)],
                    },
                }
            )
        return docs

    # -- resources and GPUs ----------------------------------------------------------
    def _resources(self) -> dict[str, Any]:
        r = self.c.resources
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
        for gpu in self.c.gpus:
            count = gpu.count
            if count is None:
                known = self.opts.gpu_count(gpu.vendor)
                if known:
                    count = known
                    self.note(
                        "converted",
                        "gpus",
                        f"all {gpu.vendor} GPUs ({gpu.origin}) → {count}, the count of host {self.source.host} in the inventory",
                    )
                else:
                    count = 1
                    why = (
                        f"host {self.source.host} lists no {gpu.vendor} GPU in the inventory"
                        if self.source.host
                        else "no --host to look up in the inventory"
                    )
                    self.note(
                        "warning",
                        "gpus",
                        f"all {gpu.vendor} GPUs ({gpu.origin}) but the count is unknown ({why}): asking for 1",
                    )
            else:
                self.note("converted", "gpus", f"{count} {gpu.vendor} GPU(s) from {gpu.origin}")
            limits[GPU_RESOURCES[gpu.vendor]] = count
        out: dict[str, Any] = {}
        if limits:
            out["limits"] = {k: limits[k] for k in sorted(limits)}
        if requests:
            out["requests"] = {k: requests[k] for k in sorted(requests)}
        return out

    # -- volumes ---------------------------------------------------------------------
    def _volumes(self, used: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        c = self.c
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        self.claim_templates: list[dict[str, Any]] = []
        for m in c.mounts:
            mount: dict[str, Any] = {"name": "", "mountPath": m.target}
            if m.read_only:
                mount["readOnly"] = True
            if m.kind == "bind":
                name = _volume_name(m.target, used)
                host_path = {"path": m.source}
                if m.host_type:
                    host_path["type"] = m.host_type
                volumes.append({"name": name, "hostPath": host_path})
                if m.source == "/nix/store" or m.source.startswith("/nix/store/"):
                    self.note(
                        "warning",
                        "volumes",
                        f"{m.source}: a Nix store path exists only on the NixOS host that built it; the pod is pinned there, and the path changes with every rebuild — prefer a ConfigMap or an image",
                    )
                else:
                    self.note(
                        "converted",
                        "volumes",
                        f"{m.source} → hostPath{' (read-only)' if m.read_only else ''} at {m.target}",
                    )
            elif m.kind == "volume":
                vol = sanitize(m.source)
                name = _volume_name(m.source, used)
                if m.source in self.shared:
                    volumes.append({"name": name, "persistentVolumeClaim": {"claimName": vol}})
                    self.note(
                        "converted",
                        "volumes",
                        f"named volume {m.source} → shared PersistentVolumeClaim {vol} (_volumes.yaml)",
                    )
                elif self.workload == "Job":
                    # a Job has no claim templates: its own claim, named after the pod
                    claim = f"{name}-{self.name}"
                    volumes.append({"name": name, "persistentVolumeClaim": {"claimName": claim}})
                    self.claim_templates.append(
                        _pvc(claim, self.ns, self.opts, self.labels, m.source)
                    )
                    self.note(
                        "converted",
                        "volumes",
                        f"named volume {m.source} → PersistentVolumeClaim {claim}, {self.opts.size_of(m.source)}",
                    )
                else:
                    self.claim_templates.append(
                        _pvc(name, self.ns, self.opts, self.labels, m.source)
                    )
                    self.note(
                        "converted",
                        "volumes",
                        f"named volume {m.source} → volumeClaimTemplate {name} (PVC {name}-{self.name}-0), {self.opts.size_of(m.source)}",
                    )
                self.note(
                    "action",
                    "volumes",
                    f"copy the data of volume {m.source} (on the old host under {self.opts.volume_root}/{m.source}/_data) into the new claim before first start",
                )
            elif m.kind == "tmpfs":
                name = _volume_name(m.target, used)
                empty: dict[str, Any] = {"medium": "Memory"}
                if m.size:
                    empty["sizeLimit"] = m.size
                volumes.append({"name": name, "emptyDir": empty})
                self.note("converted", "volumes", f"tmpfs {m.target} → emptyDir in memory")
            else:
                name = _volume_name(m.target, used)
                volumes.append({"name": name, "emptyDir": {}})
                self.note(
                    "changed",
                    "volumes",
                    f"anonymous volume {m.target} → emptyDir (lost when the pod is deleted)",
                )
            mount["name"] = name
            mounts.append(mount)
        if c.resources.shm_size:
            name = _volume_name("dshm", used)
            volumes.append(
                {"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": c.resources.shm_size}}
            )
            mounts.append({"name": name, "mountPath": "/dev/shm"})
            self.note(
                "converted", "shm-size", f"/dev/shm of {c.resources.shm_size} → emptyDir in memory"
            )
        for dev in c.devices:
            name = _volume_name(f"dev-{dev.host_path}", used)
            volumes.append({"name": name, "hostPath": {"path": dev.host_path}})
            mounts.append({"name": name, "mountPath": dev.container_path or dev.host_path})
            hint = (
                " (video acceleration: install the Intel or AMD GPU device plugin and request its resource instead)"
                if dev.host_path.startswith("/dev/dri")
                else ""
            )
            if c.privileged:
                self.note(
                    "converted", "devices", f"{dev.host_path} → hostPath (privileged container)"
                )
            else:
                self.note(
                    "warning",
                    "devices",
                    f"{dev.host_path} → hostPath; the device cgroup blocks it unless the container is privileged or a device plugin provides it{hint}",
                )
        for kind, items in (("secret", c.secret_files), ("configMap", c.config_files)):
            for ref, target in items:
                obj = f"{sanitize(self.source.project or self.ns)}-{sanitize(ref)}"
                name = _volume_name(f"{kind}-{ref}", used)
                key = _SECRET_KEY.sub("_", ref)
                ref_key = "secretName" if kind == "secret" else "name"
                volumes.append({"name": name, kind: {ref_key: obj}})
                mounts.append({"name": name, "mountPath": target, "subPath": key, "readOnly": True})
        return volumes, mounts

    # -- probes and security ---------------------------------------------------------
    def _probes(self) -> dict[str, Any]:
        hc = self.c.healthcheck
        if hc is None or not hc.command:
            return {}
        probe: dict[str, Any] = {"exec": {"command": list(hc.command)}}
        probe["periodSeconds"] = hc.interval_s or 30
        probe["timeoutSeconds"] = hc.timeout_s or 30
        probe["failureThreshold"] = hc.retries or 3
        self.note(
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
            period = hc.start_interval_s or probe["periodSeconds"]
            threshold = -(-hc.start_period_s // period) + probe["failureThreshold"]
            out["startupProbe"] = {
                "exec": {"command": list(hc.command)},
                "periodSeconds": period,
                "timeoutSeconds": probe["timeoutSeconds"],
                "failureThreshold": threshold,
            }
            self.note(
                "changed",
                "healthcheck",
                f"start period {hc.start_period_s}s → startupProbe ({threshold} tries every {period}s): readiness waits for it; a container still unhealthy after that is restarted, where the engines only marked it unhealthy",
            )
        return out

    def _security_context(self) -> dict[str, Any]:
        c = self.c
        sc: dict[str, Any] = {}
        if c.privileged:
            sc["privileged"] = True
            self.note("warning", "privileged", "privileged: full access to the node")
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
                self.note(
                    "lost",
                    "user",
                    f"user {c.user!r} is a name: Kubernetes needs a numeric UID (runAsUser); the image's default user runs",
                )
        return sc

    # -- pod and workload ------------------------------------------------------------
    def _pod_spec(
        self, containers: list[dict[str, Any]], volumes: list[dict[str, Any]]
    ) -> dict[str, Any]:
        c = self.c
        pod_members = [self.c, *(m.c for m in self.members)]
        pod: dict[str, Any] = {}
        if self.place.restart_policy:
            pod["restartPolicy"] = self.place.restart_policy
        # PodSpec.enableServiceLinks "Defaults to true" (Kubernetes 1.35 API schema):
        # it injects *_PORT/*_SERVICE_HOST variables that docker never set and that
        # clash with apps reading e.g. REDIS_PORT as a number
        pod["enableServiceLinks"] = False
        if any(g.vendor == "nvidia" for m in pod_members for g in m.gpus):
            pod["runtimeClassName"] = NVIDIA_RUNTIME_CLASS
        if any(m.host_network for m in pod_members):
            pod["hostNetwork"] = True
            pod["dnsPolicy"] = "ClusterFirstWithHostNet"
            self.note(
                "converted",
                "network",
                "host network → hostNetwork with ClusterFirstWithHostNet DNS",
            )
        if c.hostname:
            hostname = c.hostname if _dns_label(c.hostname) else sanitize(c.hostname)
            if hostname != c.hostname:
                self.note(
                    "changed",
                    "hostname",
                    f"hostname {c.hostname!r} → {hostname!r} (DNS-1123 label)",
                )
            pod["hostname"] = hostname
        add_hosts = [h for m in pod_members for h in m.add_hosts]
        if add_hosts:
            by_ip: dict[str, list[str]] = {}
            for host, ip in add_hosts:
                by_ip.setdefault(ip, []).append(host)
            pod["hostAliases"] = [
                {"ip": ip, "hostnames": sorted(set(by_ip[ip]))} for ip in sorted(by_ip)
            ]
        if c.dns:
            servers = list(dict.fromkeys(c.dns))
            if len(servers) > 2:
                self.note(
                    "changed",
                    "dns",
                    f"only 2 extra nameservers fit beside the cluster DNS; dropped {servers[2:]}",
                )
            pod["dnsConfig"] = {"nameservers": servers[:2]}
            self.note(
                "changed",
                "dns",
                "extra nameservers added after the cluster DNS (dnsPolicy stays ClusterFirst so Service names resolve)",
            )
        groups = [int(g) for g in c.group_add if g.isdigit()]
        named = [g for g in c.group_add if not g.isdigit()]
        if named:
            self.note(
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
            pod["securityContext"] = pod_sc
        if c.sysctls:
            unsafe = sorted(k for k in c.sysctls if k not in SAFE_SYSCTLS)
            if unsafe:
                self.note(
                    "warning",
                    "sysctl",
                    f"unsafe sysctls {unsafe} need the kubelet's --allowed-unsafe-sysctls",
                )
        if c.stop_grace_s:
            pod["terminationGracePeriodSeconds"] = c.stop_grace_s
        if c.registry_login:
            secret = f"regcred-{sanitize(c.registry_login.split('://')[-1])}"
            pod["imagePullSecrets"] = [{"name": secret}]
            self.note(
                "action",
                "login",
                f'registry login → imagePullSecrets {secret}: kubectl -n {self.ns} create secret docker-registry {secret} --docker-server={c.registry_login} --docker-username=USER --docker-password="$(cat PASSWORD_FILE)"',
            )
        self._pin(pod)
        init = [w for b in [self, *self.members] for w in b._wait_containers()]
        if init:
            pod["initContainers"] = list({w["name"]: w for w in init}.values())
        pod["containers"] = containers
        if volumes:
            pod["volumes"] = volumes
        return pod

    def _pin(self, pod: dict[str, Any]) -> None:
        if not self.place.pin:
            return
        reasons = ", ".join(self.place.pin)
        if self.source.host:
            pod["nodeSelector"] = {"kubernetes.io/hostname": self.source.host}
            self.note("converted", "nodeSelector", f"pinned to node {self.source.host}: {reasons}")
        else:
            self.note(
                "warning",
                "nodeSelector",
                f"NOT pinned to a node ({reasons}); pass --host NAME so the pod runs where the data is",
            )

    def _wait_containers(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        own_pod = self.group_of.get(self.c.source_name)
        for dep in sorted(set(self.c.depends_on)):
            target = self.by_source.get(dep)
            if target is None:
                continue
            dep_pod = self.group_of.get(dep, dep)
            if dep_pod == own_pod:
                continue  # same pod: its containers start together, nothing to wait for
            dep_name = self.names[dep]
            # a pod's ports are served by all its containers (shared network)
            pod_members = self.pods.get(dep_pod) or [target]
            ports = sorted(
                {
                    (p.container_port, p.protocol)
                    for m in pod_members
                    for p in [*m.ports, *m.expose]
                    if p.protocol == "TCP"
                }
            )
            if not ports:
                self.note(
                    "lost",
                    "dependsOn",
                    f"{dep} publishes no TCP port, so nothing to wait for: start order not enforced (annotation hydra.io/depends-on)",
                )
                continue
            host = f"{dep_name}.{self.ns}.svc.cluster.local"
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
            self.note(
                "converted",
                "dependsOn",
                f"waits for {dep} with an initContainer (TCP {dep_name}:{port} answers once it is Ready)",
            )
        return out

    def _workload(self, pod: dict[str, Any], claims: list[dict[str, Any]]) -> dict[str, Any]:
        c = self.c
        annotations = dict(self.annotations)
        if c.depends_on:
            annotations["hydra.io/depends-on"] = ",".join(
                sorted(self.names.get(d, d) for d in set(c.depends_on))
            )
        template_annotations = self._label_annotations()
        template: dict[str, Any] = {"metadata": {"labels": dict(self.labels)}}
        if template_annotations:
            template["metadata"]["annotations"] = template_annotations
        template["spec"] = pod
        if self.workload == "Job":
            return self._job(template, annotations)
        spec: dict[str, Any] = {
            "replicas": c.replicas,
            "selector": {"matchLabels": dict(self.selector)},
        }
        if self.workload == "StatefulSet":
            spec["serviceName"] = self.name
            spec["template"] = template
            spec["volumeClaimTemplates"] = [
                {
                    "metadata": {"name": t["metadata"]["name"], "labels": t["metadata"]["labels"]},
                    "spec": t["spec"],
                }
                for t in claims
            ]
            self.note(
                "converted",
                "workload",
                "StatefulSet: it owns a named volume (a claim kept across restarts; updates stop the old pod before starting the new one)",
            )
        else:
            reasons = list(self.place.recreate)
            if reasons:
                spec["strategy"] = {"type": "Recreate"}
                self.note(
                    "converted",
                    "strategy",
                    f"strategy Recreate: {', '.join(reasons)} cannot be held by two pods at once",
                )
            else:
                spec["strategy"] = {"type": "RollingUpdate"}
            spec["template"] = template
        return {
            "apiVersion": "apps/v1",
            "kind": self.workload,
            "metadata": _meta(self.name, self.ns, self.labels, annotations),
            "spec": spec,
        }

    def _job(self, template: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
        """A one-shot container (see one_shot): a Job runs it to completion once."""
        spec: dict[str, Any] = {}
        if self.place.backoff_limit is not None:
            spec["backoffLimit"] = self.place.backoff_limit
        if self.c.replicas > 1:
            spec["completions"] = spec["parallelism"] = self.c.replicas
        if self.c.replicas == 0:
            spec["suspend"] = True
        spec["template"] = template
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": _meta(self.name, self.ns, self.labels, annotations),
            "spec": spec,
        }

    def _label_annotations(self) -> dict[str, str]:
        labels = self.c.labels
        out: dict[str, str] = {}
        for key in sorted(labels):
            if label_key_error(key) is None:
                out[key] = labels[key]
            else:
                self.note("lost", "labels", f"label {key!r} is not a valid annotation key")
        ingress = sorted(
            k
            for k in labels
            if k.startswith(("traefik.", "caddy", "homepage.")) or "virtual_host" in k.lower()
        )
        if ingress:
            self.note(
                "action",
                "labels",
                f"reverse-proxy labels {ingress[:3]}{'…' if len(ingress) > 3 else ''} kept as pod annotations: write an Ingress (or IngressRoute) for them",
            )
        if out:
            self.note("converted", "labels", "container labels → pod template annotations")
        return out

    def _restart_note(self) -> None:
        r = self.c.restart
        if self.workload == "Job":
            retries = (
                "no retry"
                if self.place.backoff_limit == 0
                else f"{self.place.backoff_limit} retries"
                if self.place.backoff_limit is not None
                else "the Job default of 6 retries (compose: unlimited)"
            )
            why = f"restart {r!r}" if r else "another service waits for it to complete"
            self.note(
                "converted",
                "restart",
                f"{why}: runs once as a Job (restartPolicy {self.place.restart_policy}, {retries})",
            )
            return
        if r and r.split(":")[0] in ("no", "on-failure"):
            self.note(
                "changed",
                "restart",
                f"restart {r!r}: Deployments and StatefulSets always restart containers",
            )
