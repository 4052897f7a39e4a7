"""The one emitter: neutral model → Kubernetes objects (plain dicts), plus the Secrets
that must not land under k8s/ and the notes the report shows.

First what depends on the whole source — names, alias Services, which containers share
a pod, shared volumes, each pod's placement (`place`) — then each pod from its parts,
every part a pure function of the model and those decisions (parts.py).

Every rule here is listed, with its reason, in docs/converter.md; the note texts say the
same thing to the user per container.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hydradeploy.convert.model import Container, Note, Source
from hydradeploy.convert.names import assign_names, sanitize
from hydradeploy.convert.parts import (
    MANAGED_BY,
    SECRET_KEY,
    EmitOptions,
    Placement,
    Pod,
    WorkloadKind,
    build_pod,
    dns_label,
    meta,
    pvc,
)

__all__ = ["ContainerResult", "Conversion", "EmitOptions", "Placement", "convert", "place"]

SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


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
    pinned_node: str | None = None  # node of the pod's nodeSelector (placement.pin)


@dataclass(slots=True)
class Conversion:
    namespace: str
    files: dict[str, list[dict[str, Any]]]  # path under --out → documents
    secrets: dict[str, dict[str, Any]]  # path under the secrets dir → one Secret
    containers: list[ContainerResult]
    notes: list[Note]
    paths: list[str] = field(default_factory=list)  # every file under --out, sorted


FileSink = Callable[[str, list[dict[str, Any]]], None]


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


def pod_groups(source: Source) -> tuple[dict[str, list[Container]], list[Note]]:
    """primary source name -> [primary, containers sharing its network namespace], and
    the notes about network peers that cannot be honoured.

    `network_mode: service:X` / `--network=container:X` share X's network namespace
    (spec 05-services.md "network_mode"): they reach each other on localhost and X
    serves their ports, so they must be containers of one Pod. A container whose peer
    is not converted, or that is part of a cycle of peers, runs in its own pod (and
    those naming it join it), whatever the order of the source."""
    by_name = {c.source_name: c for c in source.containers}

    def broken(c: Container) -> bool:
        seen = {c.source_name}
        peer = c.network_peer
        while peer is not None:
            if peer not in by_name:
                return peer == c.network_peer  # only c's own peer missing breaks c
            if peer in seen:
                return peer == c.source_name  # c is on the cycle
            seen.add(peer)
            peer = by_name[peer].network_peer
        return False

    cut = {c.source_name for c in source.containers if broken(c)}
    notes = [
        Note(
            "warning",
            "network_mode",
            f"{c.source_name}: network of {c.network_peer!r} is not among the converted containers (or a cycle): runs in its own pod",
        )
        for c in source.containers
        if c.source_name in cut
    ]

    def root(c: Container) -> Container:
        seen = {c.source_name}
        while c.network_peer is not None and c.source_name not in cut:
            c = by_name[c.network_peer]
            if c.source_name in seen:  # a cycle leading in, already cut on it
                break
            seen.add(c.source_name)
        return c

    groups: dict[str, list[Container]] = {}
    for c in source.containers:
        r = root(c)
        group = groups.setdefault(r.source_name, [r])
        if c is not r:
            group.append(c)
    return groups, notes


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
    groups, group_notes = pod_groups(source)
    top_notes += group_notes
    aliases, alias_notes = _assign_aliases(source, names)
    top_notes += alias_notes
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
            claim = pvc(
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
    shared_volumes = frozenset(shared)
    for c in source.containers:
        if c.source_name not in groups:
            continue  # a container of another one's pod, built with it
        members = groups[c.source_name]
        pod = Pod(
            members=tuple(members),
            source=source,
            opts=opts,
            placement=place(members, shared, one_shot(c, awaited, source.kind)),
            names=names,
            shared=shared_volumes,
            by_source=by_source,
            group_of=group_of,
            groups=groups,
            aliases=tuple(a for m in members for a in _pod_aliases(m, c, names, aliases)),
        )
        built = build_pod(pod)
        lb_ports.update(built.published)
        path = f"{ns}/{pod.name}.yaml"
        put(path, built.docs)
        secrets.update(built.secrets)
        for m in members:
            primary = m is c
            results.append(
                ContainerResult(
                    name=names[m.source_name],
                    source_name=m.source_name,
                    source_file=m.source_file,
                    workload=pod.placement.workload if primary else f"in pod of {pod.name}",
                    file=path,
                    objects=[f"{d['kind']}/{d['metadata']['name']}" for d in built.docs]
                    if primary
                    else [],
                    notes=[_in_namespace(n, ns) for n in m.notes]
                    + list(built.notes[m.source_name]),
                    load_balancer=built.load_balancer if primary else False,
                    pinned_node=built.pinned_node if primary else None,
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


def _pod_aliases(
    m: Container,
    primary: Container,
    names: dict[str, str],
    aliases: dict[str, list[tuple[str, str]]],
) -> list[tuple[str, str]]:
    """The alias Services of a pod member: a container sharing the pod's network is also
    reachable under its own name, and under its aliases."""
    own = [] if m is primary else [(names[m.source_name], m.source_name)]
    return own + list(aliases.get(m.source_name, []))


def _is_dns1035(name: str) -> bool:
    """Service names are DNS-1035 labels: a DNS-1123 label that starts with a letter
    (Kubernetes apimachinery validation.IsDNS1035Label)."""
    return dns_label(name) and name[0].isalpha()


def _assign_aliases(
    source: Source, names: dict[str, str]
) -> tuple[dict[str, list[tuple[str, str]]], list[Note]]:
    """source name -> [(Service name, the alias it stands for)]: one extra Service per
    other name a container answered to, so `http://<alias>:port` keeps resolving.

    Names already taken (workloads and their -lb/-nodeport Services) and aliases claimed
    twice are reported and skipped: one DNS name can point at one pod set only."""
    taken = set(names.values())
    taken |= {f"{n}-{suffix}" for n in names.values() for suffix in ("lb", "nodeport")}
    out: dict[str, list[tuple[str, str]]] = {}
    notes: list[Note] = []
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
                notes.append(
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
                notes.append(
                    Note(
                        "changed",
                        "aliases",
                        f"{c.source_name}: {origin} {alias!r} is no DNS-1035 label: its Service is {service!r}; clients must use that name",
                    )
                )
    return out, notes


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
    metadata = meta(
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
        "metadata": metadata,
        "data": {SECRET_KEY.sub("_", ref): source.config_data[ref]},
    }
