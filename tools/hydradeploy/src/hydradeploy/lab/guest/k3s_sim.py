"""The simulated k3s daemon of a lab host (lib/hydra-lab/k3s-sim CLOSURE).

server: an HTTP API on :6443 that keeps the node registry and answers what
`k3s kubectl` asks (nodes, readyz, addons), in the shape real Kubernetes gives.
agent: heartbeats its node (and its microVM guests' nodes) to the server URL.
A node that stops heartbeating turns Ready=Unknown after the grace period.
A server that is not cluster-init forwards heartbeats and reads to the cluster-init
server (standing in for the replicated datastore of an HA cluster).
Faults from the closure: join (never registers), labels (wrong labels), gpus (none).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import common, k3s_deploy

DEFAULT_ADDONS = (
    "aggregated-metrics-reader", "auth-delegator", "auth-reader", "ccm", "coredns",
    "local-storage", "metrics-apiservice", "metrics-server", "resource-reader",
    "rolebindings", "runtimes", "traefik",
)  # fmt: skip
ADDON_COMPONENT = {
    "aggregated-metrics-reader": "metrics-server", "auth-delegator": "metrics-server",
    "auth-reader": "metrics-server", "metrics-apiservice": "metrics-server",
    "resource-reader": "metrics-server",
}  # fmt: skip


def parse_taint(spec: str) -> dict[str, str]:
    keyval, _, effect = spec.rpartition(":")
    key, _, value = keyval.partition("=")
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def node_objects(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """What this host's kubelet(s) post: its own node and its microVM guests'."""
    fault = settings.get("fault")
    if fault == "join":
        return []
    nodes = []
    own_labels = dict(settings["labels"])
    gpus = dict(settings["gpus"])
    if fault == "labels":
        own_labels = {"hydra.io/lab-fault": "wrong-labels"}
    if fault == "gpus":
        gpus = {}
    role_labels: dict[str, str] = {}
    if settings["role"] == "server":
        role_labels["node-role.kubernetes.io/control-plane"] = "true"
        role_labels["node-role.kubernetes.io/master"] = "true"
        if settings.get("embedded_etcd"):
            role_labels["node-role.kubernetes.io/etcd"] = "true"
    nodes.append(
        _node(
            settings,
            settings["node_name"],
            settings["address"],
            {**role_labels, **own_labels},
            settings["taints"],
            gpus,
            settings.get("cpu", 16),
            settings.get("memory_mb", 65536),
        )
    )
    for vm in settings.get("microvms", []):
        nodes.append(
            _node(
                settings,
                vm["name"],
                vm["address"],
                dict(vm["labels"]),
                vm["taints"],
                {},
                vm["vcpu"],
                vm["memory_mb"],
            )
        )
    return nodes


def _node(
    settings: dict[str, Any],
    name: str,
    address: str,
    labels: dict[str, str],
    taints: list[str],
    gpus: dict[str, int],
    cpu: int,
    memory_mb: int,
) -> dict[str, Any]:
    base_labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "k3s",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "k3s",
    }
    capacity = {
        "cpu": str(cpu),
        "ephemeral-storage": "102626232Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{memory_mb * 1024}Ki",
        "pods": "110",
        **{res: str(n) for res, n in sorted(gpus.items())},
    }
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": dict(sorted({**base_labels, **labels}.items())),
            "annotations": {
                "k3s.io/hostname": name,
                "k3s.io/internal-ip": address,
                "k3s.io/node-args": json.dumps([settings["role"]]),
                "node.alpha.kubernetes.io/ttl": "0",
                "hydra.io/lab-closure": settings.get("closure", ""),
            },
        },
        "spec": {"podCIDR": "", "providerID": f"k3s://{name}"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
            ],
            "capacity": capacity,
            "allocatable": dict(capacity),
            "nodeInfo": {
                "architecture": "amd64",
                "containerRuntimeVersion": "containerd://2.1.4-k3s1",
                "kernelVersion": os.uname().release,
                "kubeProxyVersion": settings["kubelet_version"],
                "kubeletVersion": settings["kubelet_version"],
                "operatingSystem": "linux",
                "osImage": "NixOS (hydra lab host)",
                "machineID": name,
                "systemUUID": name,
                "bootID": name,
            },
        },
    }
    if taints:
        node["spec"]["taints"] = [parse_taint(t) for t in taints]
    return node


class Registry:
    """The server's nodes, persisted so a k3s restart keeps them (like etcd would)."""

    def __init__(self, grace: float, path: Path) -> None:
        self.grace = grace
        self.path = path
        self.lock = threading.Lock()
        self.nodes: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(OSError, ValueError):
            self.nodes = json.loads(path.read_text())

    def heartbeat(self, nodes: list[dict[str, Any]]) -> None:
        now = time.time()
        with self.lock:
            for node in nodes:
                name = node["metadata"]["name"]
                old = self.nodes.get(name)
                created = old["created"] if old else now
                was_ready = old is not None and now - old["last"] <= self.grace
                since = old["since"] if old and was_ready else now
                self.nodes[name] = {"node": node, "last": now, "created": created, "since": since}
            self._save()

    def delete(self, name: str) -> bool:
        with self.lock:
            found = self.nodes.pop(name, None) is not None
            self._save()
            return found

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.nodes))
        os.replace(tmp, self.path)

    def render(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            entry = self.nodes.get(name)
        if entry is None:
            return None
        return _with_status(entry, self.grace)

    def render_all(self) -> list[dict[str, Any]]:
        with self.lock:
            entries = [self.nodes[n] for n in sorted(self.nodes)]
        return [_with_status(e, self.grace) for e in entries]


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _with_status(entry: dict[str, Any], grace: float) -> dict[str, Any]:
    node: dict[str, Any] = json.loads(json.dumps(entry["node"]))
    now = time.time()
    ready = now - entry["last"] <= grace
    node["metadata"]["creationTimestamp"] = _iso(entry["created"])
    node["metadata"]["uid"] = f"lab-{node['metadata']['name']}-{int(entry['created'])}"
    heartbeat = _iso(entry["last"])
    if ready:
        cond = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastTransitionTime": _iso(entry["since"]),
        }
    else:
        cond = {
            "type": "Ready",
            "status": "Unknown",
            "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.",
            "lastTransitionTime": _iso(entry["last"] + grace),
        }
        # The node lifecycle controller taints unreachable nodes, as in Kubernetes.
        node["spec"]["taints"] = [
            *node["spec"].get("taints", []),
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
        ]
    cond["lastHeartbeatTime"] = heartbeat
    pressure = [
        {"type": t, "status": "False" if ready else "Unknown", "reason": r,
         "message": m, "lastHeartbeatTime": heartbeat,
         "lastTransitionTime": _iso(entry["created"])}
        for t, r, m in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        )
    ]  # fmt: skip
    node["status"]["conditions"] = [*pressure, cond]
    return node


def addons(settings: dict[str, Any]) -> dict[str, Any]:
    disabled = set(settings.get("disable", []))
    items = []
    for name in DEFAULT_ADDONS:
        if ADDON_COMPONENT.get(name, name) in disabled:
            continue
        items.append({
            "apiVersion": "k3s.cattle.io/v1", "kind": "Addon",
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"source": f"/var/lib/rancher/k3s/server/manifests/{name}.yaml"},
        })  # fmt: skip
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def _not_found(name: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": f'nodes "{name}" not found', "reason": "NotFound",
            "details": {"name": name, "kind": "nodes"}, "code": 404}  # fmt: skip


def serve(settings: dict[str, Any], token: str) -> None:
    upstream = None if settings.get("cluster_init") else settings["server_url"]
    SERVER_DIR = common.SERVER_STATE.parent
    SERVER_DIR.mkdir(parents=True, exist_ok=True)
    registry = Registry(float(settings["grace_seconds"]), common.SERVER_STATE)
    # The deploy controller and the objects it manages (k3s_deploy.py, docs/prune.md).
    packaged = [a["metadata"]["name"] for a in addons(settings)["items"]]
    objects = None if upstream else k3s_deploy.start(packaged, SERVER_DIR)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: Any) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header(
                "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
            )
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _proxy(self, method: str, body: bytes | None = None) -> None:
            assert upstream is not None
            req = urllib.request.Request(
                upstream + self.path, data=body, method=method, headers=dict(self.headers)
            )
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    self._send(resp.status, json.loads(resp.read()))
            except urllib.error.HTTPError as exc:
                self._send(exc.code, json.loads(exc.read() or b"{}"))
            except (OSError, ValueError):
                self._send(
                    503,
                    {
                        "kind": "Status",
                        "status": "Failure",
                        "code": 503,
                        "message": "etcd cluster is unavailable or misconfigured",
                    },
                )

        def _objects(self, method: str, body: bytes | None = None) -> bool:
            return k3s_deploy.serve_objects(self, objects, upstream, method, body)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if self._objects("GET"):
                return
            if path in ("/readyz", "/healthz", "/livez"):
                self._send(200, "ok")
            elif path == "/apis/k3s.cattle.io/v1/addons":
                self._send(200, addons(settings))
            elif upstream is not None and path.startswith("/api/v1/nodes"):
                self._proxy("GET")
            elif path == "/api/v1/nodes":
                self._send(
                    200,
                    {
                        "apiVersion": "v1",
                        "kind": "List",
                        "items": registry.render_all(),
                        "metadata": {"resourceVersion": ""},
                    },
                )
            elif path.startswith("/api/v1/nodes/"):
                name = path.rsplit("/", 1)[1]
                node = registry.render(name)
                self._send(200, node) if node else self._send(404, _not_found(name))
            else:
                self._send(404, {"kind": "Status", "code": 404, "message": "not found"})

        def do_DELETE(self) -> None:
            path = self.path.split("?")[0]
            if self._objects("DELETE"):
                return
            if upstream is not None:
                self._proxy("DELETE")
            elif path.startswith("/api/v1/nodes/"):
                name = path.rsplit("/", 1)[1]
                if registry.delete(name):
                    self._send(200, {"kind": "Status", "status": "Success"})
                else:
                    self._send(404, _not_found(name))
            else:
                self._send(404, {"kind": "Status", "code": 404})

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if not self._objects("PUT", body):
                self._send(404, {"kind": "Status", "code": 404})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.path != "/lab/v1/heartbeat" and self._objects("POST", body):
                return
            if self.path != "/lab/v1/heartbeat":
                self._send(404, {"kind": "Status", "code": 404})
            elif self.headers.get("Authorization") != f"Bearer {token}":
                self._send(401, {"kind": "Status", "code": 401, "message": "Unauthorized"})
            elif upstream is not None:
                self._proxy("POST", body)
            else:
                registry.heartbeat(json.loads(body)["nodes"])
                self._send(200, {"kind": "Status", "status": "Success"})

    server = ThreadingHTTPServer(("0.0.0.0", common.API_PORT), Handler)
    server.daemon_threads = True
    write_kubeconfig()
    own = node_objects(settings)
    if upstream is None:
        # The server's own kubelet posts to the local API.
        def local_beat() -> None:
            while True:
                if own:
                    registry.heartbeat(own)
                time.sleep(float(settings["heartbeat_seconds"]))

        threading.Thread(target=local_beat, daemon=True).start()
    else:
        threading.Thread(target=beat, args=(settings, token, own), daemon=True).start()
    server.serve_forever()


def write_kubeconfig() -> None:
    common.KUBECONFIG.parent.mkdir(parents=True, exist_ok=True)
    common.KUBECONFIG.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n"
        f"    server: https://127.0.0.1:{common.API_PORT}\n  name: default\n"
        "contexts:\n- context:\n    cluster: default\n    user: default\n  name: default\n"
        "current-context: default\nusers:\n- name: default\n  user: {}\n"
    )
    os.chmod(common.KUBECONFIG, 0o600)


def beat(settings: dict[str, Any], token: str, nodes: list[dict[str, Any]]) -> None:
    """An agent's kubelet: post node status to the server every interval, forever."""
    url = settings["server_url"] + "/lab/v1/heartbeat"
    interval = float(settings["heartbeat_seconds"])
    body = json.dumps({"nodes": nodes}).encode()
    failing = False
    while True:
        if not nodes:
            if not failing:
                print('level=error msg="failed to join the cluster (lab fault: join)"', flush=True)
                failing = True
            time.sleep(interval)
            continue
        req = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=max(interval, 1.0)):
                pass
            if failing:
                print(f'level=info msg="connected to {settings["server_url"]}"', flush=True)
            failing = False
        except (OSError, urllib.error.HTTPError) as exc:
            if not failing:
                print(f'level=error msg="heartbeat to {url} failed: {exc}"', flush=True)
            failing = True
        time.sleep(interval)


def main(closure: Path) -> int:
    settings = common.load_settings(closure)
    settings["closure"] = str(closure)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        token = Path(settings["token_file"]).read_text().strip()
    except OSError as exc:
        print(
            f'level=fatal msg="cannot read token file {settings["token_file"]}: {exc.strerror}"',
            flush=True,
        )
        return 1
    print(
        f'level=info msg="starting k3s {settings["role"]} {settings["kubelet_version"]} '
        f'(hydra lab simulation) from {closure}"',
        flush=True,
    )
    if settings["role"] == "server":
        serve(settings, token)
    else:
        beat(settings, token, node_objects(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
