"""sw/bin/k3s (and sw/bin/kubectl) of a lab closure: the client side of simulated k3s.

Answers the calls the deploy tool makes, with kubectl's exit codes:
`k3s --version`, `k3s kubectl get nodes|node NAME [-o json|wide|name]`,
`k3s kubectl get lease[s] -n kube-node-lease [NAME] -o json`,
`k3s kubectl get --raw /readyz`, `k3s kubectl get addons -A -o json`,
`k3s kubectl delete node NAME`, `k3s kubectl label|annotate|taint node NAME … [--overwrite]`,
`k3s kubectl cordon|uncordon NODE`, `k3s kubectl drain NODE [--timeout=…]` (no pods: a cordon).
It reads the server's kubeconfig like kubectl does. Commands are looked up in COMMANDS
by (verb, kind); a module adding kinds registers its handlers with @command.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import common


class KubectlError(Exception):
    pass


def _api_base() -> tuple[str, str]:
    try:
        text = common.KUBECONFIG.read_text()
    except OSError:
        raise KubectlError(
            f'error: error loading config file "{common.KUBECONFIG}": open {common.KUBECONFIG}: '
            "no such file or directory"
        ) from None
    match = re.search(r"server:\s*https?://([^\s]+)", text)
    if not match:
        raise KubectlError('error: no server found for cluster "default"')
    return f"http://{match.group(1)}", match.group(1)


def _get(path: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    base, hostport = _api_base()
    headers = {"Content-Type": "application/merge-patch+json"} if data is not None else {}
    req = urllib.request.Request(base + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        raise KubectlError(
            f"The connection to the server {hostport} was refused - did you specify the right "
            "host or port?"
        ) from None


REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 500: "InternalError",
           503: "ServiceUnavailable"}  # fmt: skip


def _get_ok(path: str) -> bytes:
    """GET that turns an API error into kubectl's one-line message."""
    code, body = _get(path)
    if code != 200:
        try:
            message = json.loads(body).get("message", "")
        except ValueError:
            message = body.decode(errors="replace").strip()
        reason = REASONS.get(code, "InternalError")
        raise KubectlError(f"Error from server ({reason}): {message or 'unknown error'}")
    return body


def _age(ts: str) -> str:
    try:
        secs = int(
            time.time()
            - time.mktime(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))
            + time.mktime(time.gmtime(0))
        )
    except ValueError:
        return "<unknown>"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{max(secs, 0)}s"


def _status(node: dict[str, Any]) -> str:
    """kubectl's STATUS column: Ready/NotReady, plus SchedulingDisabled for a cordoned
    node (kubernetes pkg/printers/internalversion/printers.go @008dafe0, `printNode`)."""
    status = "Unknown"
    for cond in node["status"].get("conditions", []):
        if cond["type"] == "Ready":
            status = "Ready" if cond["status"] == "True" else "NotReady"
            break
    return status + (",SchedulingDisabled" if node["spec"].get("unschedulable") else "")


def _roles(node: dict[str, Any]) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix) :] for k in node["metadata"]["labels"] if k.startswith(prefix))
    return ",".join(roles) or "<none>"


def _print_nodes(items: list[dict[str, Any]], output: str | None) -> None:
    if output == "name":
        for node in items:
            print(f"node/{node['metadata']['name']}")
        return
    wide = output == "wide"
    header = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    if wide:
        header += ["INTERNAL-IP", "OS-IMAGE"]
    rows = [header]
    for node in items:
        row = [
            node["metadata"]["name"],
            _status(node),
            _roles(node),
            _age(node["metadata"].get("creationTimestamp", "")),
            node["status"]["nodeInfo"]["kubeletVersion"],
        ]
        if wide:
            row += [
                node["status"]["addresses"][0]["address"],
                node["status"]["nodeInfo"]["osImage"],
            ]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@dataclass
class Args:
    """A parsed kubectl command line: words (verb, kind, names, KEY=VAL…) and flags."""

    words: list[str] = field(default_factory=list)
    output: str | None = None
    raw: str | None = None
    namespace: str | None = None
    overwrite: bool = False


def parse(argv: list[str]) -> Args:
    a = Args()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-o", "--output"):
            i += 1
            a.output = argv[i] if i < len(argv) else None
        elif arg.startswith("--output=") or (arg.startswith("-o") and len(arg) > 2):
            a.output = arg.split("=", 1)[1] if arg.startswith("--output=") else arg[2:]
        elif arg == "--raw":
            i += 1
            a.raw = argv[i] if i < len(argv) else None
        elif arg.startswith("--raw="):
            a.raw = arg.split("=", 1)[1]
        elif arg in ("-n", "--namespace"):
            i += 1
            a.namespace = argv[i] if i < len(argv) else None
        elif arg.startswith("--namespace="):
            a.namespace = arg.split("=", 1)[1]
        elif arg in ("--overwrite", "--overwrite=true"):
            a.overwrite = True
        elif arg in ("-A", "--all-namespaces") or arg.startswith("--request-timeout="):
            pass
        elif arg in ("--kubeconfig", "--request-timeout"):
            i += 1
        elif arg.startswith("-") and arg != "-" and not arg.endswith("-"):
            pass
        else:
            a.words.append(arg)
        i += 1
    return a


Handler = Callable[[Args, list[str]], int]
#: (verb, kind) -> handler(args, names). Other object kinds plug in here.
COMMANDS: dict[tuple[str, str], Handler] = {}
KIND_ALIASES = {
    "node": "nodes", "no": "nodes", "nodes": "nodes",
    "lease": "leases", "leases": "leases", "leases.coordination.k8s.io": "leases",
    "addon": "addons", "addons": "addons", "addons.k3s.cattle.io": "addons",
}  # fmt: skip


def command(verb: str, kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[(verb, kind)] = fn
        return fn

    return register


def kubectl(argv: list[str]) -> int:
    from . import k3s_objects_cli  # objects other than nodes and leases (docs/prune.md)

    handled = k3s_objects_cli.kubectl(argv)
    if handled is not None:
        return handled
    a = parse(argv)
    if a.output not in (None, "json", "wide", "name"):
        print(f"error: the hydra lab's kubectl does not support -o {a.output}", file=sys.stderr)
        return 1
    if a.words[:1] == ["get"] and a.raw is not None:
        code, body = _get(a.raw)
        sys.stdout.write(body.decode())
        return 0 if code == 200 else 1
    if len(a.words) >= 2:
        kind = KIND_ALIASES.get(a.words[1], a.words[1])
        handler = COMMANDS.get((a.words[0], kind))
        if handler is not None:
            return handler(a, a.words[2:])
    print(f"error: the hydra lab's kubectl does not implement: {' '.join(argv)}", file=sys.stderr)
    return 1


def _json_list(items: list[dict[str, Any]], api_version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "List", "items": items,
            "metadata": {"resourceVersion": ""}}  # fmt: skip


@command("get", "nodes")
def get_nodes(a: Args, names: list[str]) -> int:
    if not names:
        body = _get_ok("/api/v1/nodes")
        items = json.loads(body)["items"]
        if a.output == "json":
            print(json.dumps(json.loads(body), indent=4))
        elif not items:
            print("No resources found", file=sys.stderr)
        else:
            _print_nodes(items, a.output)
        return 0
    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in names:
        code, body = _get(f"/api/v1/nodes/{name}")
        if code == 200:
            found.append(json.loads(body))
        elif code == 404:
            missing.append(name)
        else:
            _get_ok(f"/api/v1/nodes/{name}")
    for name in missing:
        print(f'Error from server (NotFound): nodes "{name}" not found', file=sys.stderr)
    if found:
        if a.output == "json":
            print(json.dumps(found[0] if len(names) == 1 else _json_list(found), indent=4))
        else:
            _print_nodes(found, a.output)
    return 1 if missing else 0


LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"


@command("get", "leases")
def get_leases(a: Args, names: list[str]) -> int:
    ns = a.namespace or "default"
    base = LEASES.format(ns=ns)
    if ns != "kube-node-lease":
        items: list[dict[str, Any]] = []  # the lab keeps only the nodes' Leases
        if names:
            for name in names:
                print(f'Error from server (NotFound): leases.coordination.k8s.io "{name}" '
                      "not found", file=sys.stderr)  # fmt: skip
            return 1
    else:
        if names:
            items = []
            missing = []
            for name in names:
                code, body = _get(f"{base}/{name}")
                if code == 200:
                    items.append(json.loads(body))
                elif code == 404:
                    missing.append(name)
                else:
                    _get_ok(f"{base}/{name}")
            for name in missing:
                print(f'Error from server (NotFound): leases.coordination.k8s.io "{name}" '
                      "not found", file=sys.stderr)  # fmt: skip
            if items and a.output == "json":
                doc = items[0] if len(names) == 1 else _json_list(items, "v1")
                print(json.dumps(doc, indent=4))
            elif items:
                _print_leases(items, a.output)
            return 1 if missing else 0
        items = json.loads(_get_ok(base))["items"]
    if a.output == "json":
        print(json.dumps(_json_list(items), indent=4))
    elif not items:
        print(f"No resources found in {ns} namespace.", file=sys.stderr)
    else:
        _print_leases(items, a.output)
    return 0


def _print_leases(items: list[dict[str, Any]], output: str | None) -> None:
    if output == "name":
        for lease in items:
            print(f"lease.coordination.k8s.io/{lease['metadata']['name']}")
        return
    rows = [["NAME", "HOLDER", "AGE"]]
    for lease in items:
        rows.append([lease["metadata"]["name"], lease["spec"].get("holderIdentity", ""),
                     _age(lease["metadata"].get("creationTimestamp", ""))])  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@command("get", "addons")
def get_addons(a: Args, names: list[str]) -> int:
    body = _get_ok("/apis/k3s.cattle.io/v1/addons")
    doc = json.loads(body)
    if a.output == "json":
        print(json.dumps(doc, indent=4))
    else:
        print("NAMESPACE     NAME")
        for item in doc["items"]:
            print(f"kube-system   {item['metadata']['name']}")
    return 0


@command("delete", "nodes")
def delete_nodes(a: Args, names: list[str]) -> int:
    status = 0
    for name in names:
        code, _ = _get(f"/api/v1/nodes/{name}", method="DELETE")
        if code == 200:
            print(f'node "{name}" deleted')
        else:
            print(f'Error from server (NotFound): nodes "{name}" not found', file=sys.stderr)
            status = 1
    return status


def _node_or_error(name: str) -> dict[str, Any]:
    code, body = _get(f"/api/v1/nodes/{name}")
    if code == 404:
        raise KubectlError(f'Error from server (NotFound): nodes "{name}" not found')
    if code != 200:
        _get_ok(f"/api/v1/nodes/{name}")
    node: dict[str, Any] = json.loads(body)
    return node


def _patch(name: str, patch: dict[str, Any]) -> None:
    code, _body = _get(f"/api/v1/nodes/{name}", method="PATCH", data=json.dumps(patch).encode())
    if code != 200:
        raise KubectlError(f"Error from server: patching node {name} failed ({code})")


def _meta_edit(field_name: str, verb: str, a: Args, args: list[str]) -> int:
    """kubectl label|annotate node NAME KEY=VAL… KEY-… [--overwrite]: a merge patch of
    metadata.labels|annotations (null removes); a changed value needs --overwrite."""
    if not args:
        raise KubectlError(f"error: resource name and {field_name} required")
    name, changes = args[0], args[1:]
    current = _node_or_error(name)["metadata"].get(field_name, {}) or {}
    patch: dict[str, str | None] = {}
    for change in changes:
        if change.endswith("-") and "=" not in change:
            key = change[:-1]
            if key not in current:
                print(f'{field_name[:-1]} "{key}" not found.')
            patch[key] = None
            continue
        key, eq, value = change.partition("=")
        if not eq:
            raise KubectlError(f"error: invalid {field_name[:-1]} spec: {change}")
        if key in current and current[key] != value and not a.overwrite:
            raise KubectlError(
                f"error: '{key}' already has a value ({current[key]}), and --overwrite is false"
            )
        patch[key] = value
    _patch(name, {"metadata": {field_name: patch}})
    print(f"node/{name} {verb}")
    return 0


@command("label", "nodes")
def label_nodes(a: Args, args: list[str]) -> int:
    return _meta_edit("labels", "labeled", a, args)


@command("annotate", "nodes")
def annotate_nodes(a: Args, args: list[str]) -> int:
    return _meta_edit("annotations", "annotated", a, args)


def _taint_spec(spec: str) -> tuple[str, str | None, str]:
    body, _, effect = spec.rpartition(":")
    key, eq, value = body.partition("=")
    if not key or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise KubectlError(f"error: invalid taint spec: {spec}")
    return key, (value if eq else None), effect


@command("taint", "nodes")
def taint_nodes(a: Args, args: list[str]) -> int:
    """kubectl taint node NAME KEY[=VAL]:EFFECT… KEY[:EFFECT]-…: the node's taints are
    read, changed here and written back whole (spec.taints is replaced by a patch).
    upstream: kubernetes staging/src/k8s.io/kubectl/pkg/cmd/taint/taint.go @040f689d2abf
    (`Validate`: a key both added and removed, the removal without effect or with the
    same one, is refused before anything is read) and utils.go @04791b490660
    (`checkIfTaintsAlreadyExists`: without --overwrite, a taint to add whose key and
    effect the node already has is refused, whatever its value)."""
    if not args:
        raise KubectlError("error: at least one taint update is required")
    name, specs = args[0], args[1:]
    adds = [_taint_spec(s) for s in specs if not s.endswith("-")]
    removes = [s[:-1].partition(":")[::2] for s in specs if s.endswith("-")]
    conflicts = [f'{{"{rk}":"{re_}"}}' for rk, re_ in removes for ak, _v, ae in adds
                 if rk == ak and (not re_ or re_ == ae)]  # fmt: skip
    if conflicts:
        raise KubectlError(
            "error: can not both modify and remove the following taint(s) in the same "
            f"command: {', '.join(conflicts)}"
        )
    taints = list(_node_or_error(name)["spec"].get("taints", []) or [])
    existing = [k for k, _v, e in adds if any(t["key"] == k and t["effect"] == e for t in taints)]
    if existing and not a.overwrite:
        raise KubectlError(
            f"error: node {name} already has {','.join(existing)} taint(s) with same "
            "effect(s) and --overwrite is false"
        )
    for spec in specs:
        if spec.endswith("-"):
            body = spec[:-1]
            key, _, effect = body.partition(":")
            kept = [t for t in taints
                    if not (t["key"] == key and (not effect or t["effect"] == effect))]  # fmt: skip
            if len(kept) == len(taints):
                raise KubectlError(f'error: taint "{body}" not found')
            taints = kept
            continue
        key, value, effect = _taint_spec(spec)
        taints = [t for t in taints if not (t["key"] == key and t["effect"] == effect)]
        new: dict[str, str] = {"key": key, "effect": effect}
        if value:
            new["value"] = value
        taints.append(new)
    _patch(name, {"spec": {"taints": taints}})
    print(f"node/{name} modified")
    return 0


def _cordon(name: str, desired: bool) -> str:
    """kubectl's CordonHelper: patch spec.unschedulable only when it differs (kubernetes
    staging/src/k8s.io/kubectl/pkg/drain/cordon.go @2556d2c3, `UpdateIfRequired`,
    `PatchOrReplaceWithContext`); the taint is the node lifecycle controller's
    (k3s_nodes.py). Returns kubectl-like wording (the lab's own)."""
    node = _node_or_error(name)
    if bool(node["spec"].get("unschedulable")) == desired:
        return f"node/{name} already {'cordoned' if desired else 'uncordoned'}"
    _patch(name, {"spec": {"unschedulable": desired}})
    return f"node/{name} {'cordoned' if desired else 'uncordoned'}"


def _one_node(verb: str, argv: list[str]) -> str:
    names = parse(argv).words
    if len(names) != 1:
        raise KubectlError(f"error: USAGE: {verb} NODE [flags]")
    return names[0]


def cordon(argv: list[str], desired: bool) -> int:
    print(_cordon(_one_node("cordon" if desired else "uncordon", argv), desired))
    return 0


def drain(argv: list[str]) -> int:
    """kubectl drain = cordon, then evict every pod (PDBs respected, retried until
    --timeout). The lab runs no pods: nothing to evict, so drain is the cordon and
    success; --ignore-daemonsets, --delete-emptydir-data and --timeout are accepted."""
    name = _one_node("drain", argv)
    print(_cordon(name, True))
    print(f"node/{name} drained")
    return 0


def main(closure: Path, prog: str, argv: list[str]) -> int:
    settings = common.load_settings(closure)
    if prog == "kubectl":
        argv = ["kubectl", *argv]
    try:
        if argv[:1] in (["--version"], ["-v"], ["version"]):
            print(f"k3s version {settings['kubelet_version']} (hydra lab simulation)")
            print("go version go1.24.6")
            return 0
        if argv[:2] in (["kubectl", "cordon"], ["kubectl", "uncordon"]):
            return cordon(argv[2:], argv[1] == "cordon")
        if argv[:2] == ["kubectl", "drain"]:
            return drain(argv[2:])
        if argv[:1] == ["kubectl"]:
            return kubectl(argv[1:])
        if argv[:1] == ["check-config"]:
            print("lab host: k3s is simulated; nothing to check")
            return 0
    except KubectlError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"k3s (hydra lab): unsupported command: {' '.join(argv) or '(none)'}", file=sys.stderr)
    return 1
