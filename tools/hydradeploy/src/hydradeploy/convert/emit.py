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
from typing import Any

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


@dataclass(frozen=True, slots=True)
class EmitOptions:
    namespace: str
    host: str | None = None  # node that holds bind-mounted data
    storage_class: str | None = None  # None: the cluster default (k3s: local-path)
    volume_size: str = "10Gi"
    gpu_count: Callable[[str], int | None] = lambda vendor: None  # host GPUs per vendor
    volume_root: str = "/var/lib/containers/storage/volumes"  # where named volumes live now


@dataclass(slots=True)
class ContainerResult:
    name: str
    source_name: str
    source_file: str
    workload: str  # Deployment or StatefulSet
    file: str  # relative to the output root
    objects: list[str] = field(default_factory=list)  # "Kind/name"
    notes: list[Note] = field(default_factory=list)


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
    aliases = _assign_aliases(source, names, top_notes)
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
                        "annotations": {"hydra.io/source": ", ".join(source.files)},
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
    for c in source.containers:
        builder = _Builder(c, names[c.source_name], source, opts, shared, names, by_source)
        builder.aliases = aliases.get(c.source_name, [])
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


def _pvc(name: str, ns: str, opts: EmitOptions, labels: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"]}
    if opts.storage_class:
        spec["storageClassName"] = opts.storage_class
    spec["resources"] = {"requests": {"storage": opts.volume_size}}
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
        self.pin_reasons: list[str] = []
        self.recreate_reasons: list[str] = []
        self.lb_ports: list[tuple[str, int, str]] = []  # (Service type, port, protocol)
        self.aliases: list[tuple[str, str]] = []  # (Service name, alias), see _assign_aliases
        own_volumes = [m for m in c.mounts if m.kind == "volume" and m.source not in shared]
        self.workload = "StatefulSet" if own_volumes else "Deployment"
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
    def build(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        c = self.c
        secret_docs: dict[str, dict[str, Any]] = {}
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
        volumes, mounts = self._volumes()
        if mounts:
            container["volumeMounts"] = mounts
        probe = self._probe()
        if probe:
            container["readinessProbe"] = probe
        sc = self._security_context()
        if sc:
            container["securityContext"] = sc
        pod = self._pod_spec(container, volumes)
        services = self._services()
        workload = self._workload(pod)
        self._restart_note()
        # claims of a StatefulSet are its volumeClaimTemplates; shared ones are in _volumes.yaml
        return [*services, workload], secret_docs

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
                f"create Secret {files_secret} from the env files (never read by the converter): kubectl -n {self.ns} create secret generic {files_secret} {flags}",
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
                self.pin_reasons.append(f"port bound to {hp.host_ip}")
                self.recreate_reasons.append("hostPort")
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
        c = self.c
        ports = self._all_ports()
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
        for service_name in [self.name, *(s for s, _ in self.aliases)]:
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": _meta(service_name, self.ns, self.labels, self.annotations),
                    "spec": copy.deepcopy(spec),
                }
            )
        for service_name, alias in self.aliases:
            self.note(
                "converted", "aliases", f"also reachable as {alias!r}: Service {service_name}"
            )
        node_ports: list[dict[str, Any]] = []
        lb_ports: list[dict[str, Any]] = []
        for p in c.ports:
            shown = f"{p.host_ip + ':' if p.host_ip else ''}{p.host_port or ''}→{p.container_port}/{p.protocol.lower()}"
            if p.host_port is None and not p.random_host_port:
                continue
            if p.loopback:
                self.note(
                    "changed",
                    "ports",
                    f"{shown}: bound to loopback, so not exposed beyond the node: reachable in the cluster as {self.name}:{p.container_port}; use kubectl port-forward for local access",
                )
            elif c.host_network:
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
            self.recreate_reasons.append("GPU")
        out: dict[str, Any] = {}
        if limits:
            out["limits"] = {k: limits[k] for k in sorted(limits)}
        if requests:
            out["requests"] = {k: requests[k] for k in sorted(requests)}
        return out

    # -- volumes ---------------------------------------------------------------------
    def _volumes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        c = self.c
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        used: set[str] = set()
        self.claim_templates: list[dict[str, Any]] = []
        self.claims: list[str] = []
        for m in c.mounts:
            mount: dict[str, Any] = {"name": "", "mountPath": m.target}
            if m.read_only:
                mount["readOnly"] = True
            if m.kind == "bind":
                name = _volume_name(m.target, used)
                volumes.append({"name": name, "hostPath": {"path": m.source}})
                self.pin_reasons.append(f"hostPath {m.source}")
                self.recreate_reasons.append("hostPath")
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
                    self.recreate_reasons.append("shared ReadWriteOnce claim")
                    self.note(
                        "converted",
                        "volumes",
                        f"named volume {m.source} → shared PersistentVolumeClaim {vol} (_volumes.yaml)",
                    )
                else:
                    self.claim_templates.append(_pvc(name, self.ns, self.opts, self.labels))
                    self.note(
                        "converted",
                        "volumes",
                        f"named volume {m.source} → volumeClaimTemplate {name} (PVC {name}-{self.name}-0), {self.opts.volume_size}",
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
            self.pin_reasons.append(f"device {dev.host_path}")
            self.recreate_reasons.append("host device")
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
    def _probe(self) -> dict[str, Any] | None:
        hc = self.c.healthcheck
        if hc is None or not hc.command:
            return None
        probe: dict[str, Any] = {"exec": {"command": list(hc.command)}}
        if hc.start_period_s:
            probe["initialDelaySeconds"] = hc.start_period_s
        probe["periodSeconds"] = hc.interval_s or 30
        probe["timeoutSeconds"] = hc.timeout_s or 30
        probe["failureThreshold"] = hc.retries or 3
        self.note(
            "converted",
            "healthcheck",
            "health check → readinessProbe (like the engines, an unhealthy container is not restarted; it just stops receiving Service traffic)",
        )
        return probe

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
    def _pod_spec(self, container: dict[str, Any], volumes: list[dict[str, Any]]) -> dict[str, Any]:
        c = self.c
        pod: dict[str, Any] = {}
        if any(g.vendor == "nvidia" for g in c.gpus):
            pod["runtimeClassName"] = NVIDIA_RUNTIME_CLASS
        if c.host_network:
            pod["hostNetwork"] = True
            pod["dnsPolicy"] = "ClusterFirstWithHostNet"
            self.pin_reasons.append("host network")
            self.recreate_reasons.append("host network")
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
        if c.add_hosts:
            by_ip: dict[str, list[str]] = {}
            for host, ip in c.add_hosts:
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
        init = self._wait_containers()
        if init:
            pod["initContainers"] = init
        pod["containers"] = [container]
        if volumes:
            pod["volumes"] = volumes
        return pod

    def _pin(self, pod: dict[str, Any]) -> None:
        if not self.pin_reasons:
            return
        reasons = ", ".join(dict.fromkeys(self.pin_reasons))
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
        for dep in sorted(set(self.c.depends_on)):
            target = self.by_source.get(dep)
            if target is None:
                continue
            dep_name = self.names[dep]
            ports = sorted(
                {
                    (p.container_port, p.protocol)
                    for p in [*target.ports, *target.expose]
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

    def _workload(self, pod: dict[str, Any]) -> dict[str, Any]:
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
                for t in self.claim_templates
            ]
            self.note(
                "converted",
                "workload",
                "StatefulSet: it owns a named volume (a claim kept across restarts; updates stop the old pod before starting the new one)",
            )
        else:
            reasons = list(dict.fromkeys(self.recreate_reasons))
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
        if r and r.split(":")[0] in ("no", "on-failure"):
            self.note(
                "changed",
                "restart",
                f"restart {r!r}: Deployments and StatefulSets always restart containers",
            )
