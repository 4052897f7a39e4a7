"""The simulated k3s daemon of a lab host (lib/hydra-lab/k3s-sim CLOSURE).

server: an HTTP API on :6443 over the node and Lease registry (k3s_nodes, where each
behaviour cites the upstream code it follows), answering what `k3s kubectl` asks
(nodes, leases, readyz, addons, label/taint/annotate patches) in Kubernetes' shapes.
Every host runs a kubelet loop (`kubelet`): it registers its node and its microVM
guests' nodes once, then renews their Leases and syncs their status every
heartbeat_seconds. A server that is not cluster-init forwards kubelet calls and reads
to the cluster-init server (standing in for the replicated datastore of an HA cluster).
Faults from the closure: join (never registers), labels (--node-label values replaced by
a wrong one; merged like any flag), gpus (no device plugin), lease (never renews).
"""

from __future__ import annotations

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
from .k3s_nodes import Registry

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


def node_labels(settings: dict[str, Any]) -> dict[str, str]:
    """The k3s --node-label values of this host's node (server role labels included)."""
    labels = dict(settings["labels"])
    if settings.get("fault") == "labels":
        labels = {"hydra.io/lab-fault": "wrong-labels"}
    role_labels: dict[str, str] = {}
    if settings["role"] == "server":
        role_labels["node-role.kubernetes.io/control-plane"] = "true"
        role_labels["node-role.kubernetes.io/master"] = "true"
        if settings.get("embedded_etcd"):
            role_labels["node-role.kubernetes.io/etcd"] = "true"
    return {**role_labels, **labels}


def node_objects(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """What this host's kubelet(s) register: its own node and its microVM guests'
    (labels from the kubelet and --node-label, taints from --node-taint, full status)."""
    fault = settings.get("fault")
    if fault == "join":
        return []
    nodes = []
    gpus = {} if fault == "gpus" else dict(settings["gpus"])
    nodes.append(
        _node(
            settings,
            settings["node_name"],
            settings["address"],
            node_labels(settings),
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
    # initialNode (kubernetes pkg/kubelet/kubelet_node_status.go @c579a3279): hostname,
    # os and arch labels, then the --node-labels (k3s passes its --node-label there);
    # the instance-type labels come later from the cloud controller (k3s_nodes).
    base_labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
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
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
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
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": name,
                "containerRuntimeVersion": "containerd://2.1.4-k3s1",
                "kernelVersion": os.uname().release,
                "kubeProxyVersion": settings["kubelet_version"],
                "kubeletVersion": settings["kubelet_version"],
                "machineID": name,
                "operatingSystem": "linux",
                "osImage": "NixOS (hydra lab host)",
                "systemUUID": name,
            },
        },
    }
    if taints:
        node["spec"]["taints"] = [parse_taint(t) for t in taints]
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


LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def _lease_not_found(name: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": f'leases.coordination.k8s.io "{name}" not found', "reason": "NotFound",
            "details": {"name": name, "group": "coordination.k8s.io", "kind": "leases"},
            "code": 404}  # fmt: skip


def _list(items: list[dict[str, Any]], api_version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "List", "items": items,
            "metadata": {"resourceVersion": ""}}  # fmt: skip


def lease_duration(settings: dict[str, Any]) -> float:
    # renewInterval = leaseDuration × nodeLeaseRenewIntervalFraction (0.25): the lab's
    # renewal interval is heartbeat_seconds, so its Lease lasts four of them.
    return float(settings["heartbeat_seconds"]) / 0.25


def serve(settings: dict[str, Any], token: str) -> None:
    upstream = None if settings.get("cluster_init") else settings["server_url"]
    SERVER_DIR = common.SERVER_STATE.parent
    SERVER_DIR.mkdir(parents=True, exist_ok=True)
    registry = Registry(
        float(settings["grace_seconds"]), common.SERVER_STATE, lease_duration(settings)
    )
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

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

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
            elif upstream is not None and path.startswith(("/api/v1/nodes", LEASES)):
                self._proxy("GET")
            elif path == "/api/v1/nodes":
                self._send(200, _list(registry.render_all()))
            elif path.startswith("/api/v1/nodes/"):
                name = path.rsplit("/", 1)[1]
                node = registry.render(name)
                self._send(200, node) if node else self._send(404, _not_found(name))
            elif path == LEASES:
                self._send(200, _list(registry.leases(), "coordination.k8s.io/v1"))
            elif path.startswith(LEASES + "/"):
                name = path.rsplit("/", 1)[1]
                lease = registry.lease(name)
                self._send(200, lease) if lease else self._send(404, _lease_not_found(name))
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
            body = self._body()
            if not self._objects("PUT", body):
                self._send(404, {"kind": "Status", "code": 404})

        def do_PATCH(self) -> None:
            path = self.path.split("?")[0]
            body = self._body()
            if upstream is not None:
                self._proxy("PATCH", body)
            elif path.startswith("/api/v1/nodes/"):
                name = path.rsplit("/", 1)[1]
                try:
                    patch = json.loads(body)
                except ValueError:
                    self._send(400, {"kind": "Status", "code": 400, "message": "bad patch"})
                    return
                node = registry.patch(name, patch)
                self._send(200, node) if node else self._send(404, _not_found(name))
            else:
                self._send(404, {"kind": "Status", "code": 404})

        def do_POST(self) -> None:
            body = self._body()
            if not self.path.startswith("/lab/v1/") and self._objects("POST", body):
                return
            if not self.path.startswith("/lab/v1/"):
                self._send(404, {"kind": "Status", "code": 404})
            elif self.headers.get("Authorization") != f"Bearer {token}":
                self._send(401, {"kind": "Status", "code": 401, "message": "Unauthorized"})
            elif upstream is not None:
                self._proxy("POST", body)
            else:
                self._kubelet_call(self.path, json.loads(body))

        def _kubelet_call(self, path: str, req: dict[str, Any]) -> None:
            if path == "/lab/v1/register":
                created = registry.register(req["node"], req["node_labels"])
                self._send(200, {"created": created})
            elif path == "/lab/v1/status":
                posted = registry.post_status(req["name"], req["status"], bool(req["report"]))
                if posted is None:
                    self._send(404, _not_found(req["name"]))
                else:
                    self._send(200, {"posted": posted})
            elif path == "/lab/v1/lease":
                ok = registry.renew_lease(req["name"])
                self._send(200, {}) if ok else self._send(404, _lease_not_found(req["name"]))
            else:
                self._send(404, {"kind": "Status", "code": 404})

    server = ThreadingHTTPServer(("0.0.0.0", common.API_PORT), Handler)
    server.daemon_threads = True
    write_kubeconfig()
    # The server's own kubelet talks to its local API (which forwards on a joining server).
    local = {**settings, "server_url": f"http://127.0.0.1:{common.API_PORT}"}
    threading.Thread(target=kubelet, args=(local, token), daemon=True).start()
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


def status_now(node: dict[str, Any], started: float, plugin_delay: float) -> dict[str, Any]:
    """The kubelet's node status at this moment. Until the device plugin has registered
    again after a kubelet start, its resources count 0: the device manager starts with
    empty healthy-device sets "so that the resource capacity will stay zero till the
    corresponding device plugin re-registers" (kubernetes pkg/kubelet/cm/devicemanager/
    manager.go, readCheckpoint), and re-registration zeroes extended resources
    (`reconcileExtendedResource`, kubelet_node_status.go @c579a3279)."""
    status: dict[str, Any] = json.loads(json.dumps(node["status"]))
    if time.time() < started + plugin_delay:
        for res in ("capacity", "allocatable"):
            for key in status[res]:
                if "/" in key:
                    status[res][key] = "0"
    return status


def kubelet(settings: dict[str, Any], token: str) -> None:
    """This host's kubelet(s) and k3s agent, forever: register once (k3s merges its
    --node-label values), then every heartbeat_seconds renew the Lease and sync status —
    posted when it changed or nodeStatusReportFrequency (status_report_seconds, default
    300 s = upstream's 5 min) passed."""
    base = settings["server_url"]
    interval = float(settings["heartbeat_seconds"])
    report_every = float(settings.get("status_report_seconds", 300.0))
    plugin_delay = float(settings.get("device_plugin_seconds", 2.0))
    renew = settings.get("fault") != "lease"
    nodes = node_objects(settings)
    flags = {n["metadata"]["name"]: dict(n["metadata"]["labels"]) for n in nodes}
    flags[settings["node_name"]] = node_labels(settings)
    for vm in settings.get("microvms", []):
        flags[vm["name"]] = dict(vm["labels"])
    started = time.time()
    registered: set[str] = set()
    last_report: dict[str, float] = {}
    failing = False
    if not nodes:
        print('level=error msg="failed to join the cluster (lab fault: join)"', flush=True)
    while True:
        try:
            for node in nodes:
                name = node["metadata"]["name"]
                if name not in registered:
                    _call(base, token, "register", {"node": node, "node_labels": flags[name]})
                    registered.add(name)
                report = time.time() - last_report.get(name, 0.0) >= report_every
                status = status_now(node, started, plugin_delay)
                answer = _call(base, token, "status", {"name": name, "status": status,
                                                       "report": report})  # fmt: skip
                if answer.get("posted"):
                    last_report[name] = time.time()
                if renew:
                    _call(base, token, "lease", {"name": name})
            if failing:
                print(f'level=info msg="connected to {base}"', flush=True)
            failing = False
        except urllib.error.HTTPError as exc:
            if exc.code != 404 and not failing:
                print(f'level=error msg="kubelet call to {base} failed: {exc}"', flush=True)
                failing = True
        except (OSError, ValueError) as exc:
            if not failing:
                print(f'level=error msg="kubelet call to {base} failed: {exc}"', flush=True)
            failing = True
        time.sleep(interval)


def _call(base: str, token: str, what: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{base}/lab/v1/{what}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        answer: dict[str, Any] = json.loads(resp.read() or b"{}")
        return answer


def main(closure: Path) -> int:
    settings = common.load_settings(closure)
    settings["closure"] = str(closure)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        token = Path(settings["token_file"]).read_text().strip()
    except OSError as exc:
        # logrus's text format, as k3s logs; the message is the lab's own (not verified
        # against k3s's wording, which nothing reads).
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
        kubelet(settings, token)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
