"""sw/bin/k3s (and sw/bin/kubectl) of a lab closure: the client side of simulated k3s.

Answers the calls the deploy tool makes, with real kubectl's output and exit codes:
`k3s --version`, `k3s kubectl get nodes|node NAME [-o json|wide|name]`,
`k3s kubectl get --raw /readyz`, `k3s kubectl get addons -A -o json`,
`k3s kubectl delete node NAME`. It reads the server's kubeconfig like kubectl does.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
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


def _get(path: str, method: str = "GET") -> tuple[int, bytes]:
    base, hostport = _api_base()
    req = urllib.request.Request(base + path, method=method)
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
    for cond in node["status"].get("conditions", []):
        if cond["type"] == "Ready":
            return "Ready" if cond["status"] == "True" else "NotReady"
    return "Unknown"


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


def kubectl(argv: list[str]) -> int:
    from . import k3s_objects_cli  # objects other than nodes (docs/prune.md)

    handled = k3s_objects_cli.kubectl(argv)
    if handled is not None:
        return handled
    output: str | None = None
    raw: str | None = None
    words: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-o", "--output"):
            i += 1
            output = argv[i] if i < len(argv) else None
        elif arg.startswith("--output=") or (arg.startswith("-o") and len(arg) > 2):
            output = arg.split("=", 1)[1] if arg.startswith("--output=") else arg[2:]
        elif arg == "--raw":
            i += 1
            raw = argv[i] if i < len(argv) else None
        elif arg.startswith("--raw="):
            raw = arg.split("=", 1)[1]
        elif arg in ("-A", "--all-namespaces") or arg.startswith("--request-timeout"):
            pass
        elif arg in ("-n", "--namespace", "--kubeconfig", "--request-timeout"):
            i += 1
        elif arg.startswith("-"):
            pass
        else:
            words.append(arg)
        i += 1
    if output not in (None, "json", "wide", "name"):
        print(f"error: the hydra lab's kubectl does not support -o {output}", file=sys.stderr)
        return 1
    if words[:1] == ["get"] and raw is not None:
        code, body = _get(raw)
        sys.stdout.write(body.decode())
        if code != 200:
            return 1
        return 0
    if words[:2] in (["get", "nodes"], ["get", "node"], ["get", "no"]):
        names = words[2:]
        if not names:
            body = _get_ok("/api/v1/nodes")
            items = json.loads(body)["items"]
            if output == "json":
                print(json.dumps(json.loads(body), indent=4))
            elif not items:
                print("No resources found", file=sys.stderr)
            else:
                _print_nodes(items, output)
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
            if output == "json":
                doc = (
                    found[0]
                    if len(names) == 1
                    else {
                        "apiVersion": "v1",
                        "kind": "List",
                        "items": found,
                        "metadata": {"resourceVersion": ""},
                    }
                )
                print(json.dumps(doc, indent=4))
            else:
                _print_nodes(found, output)
        return 1 if missing else 0
    if words[:2] in (["get", "addons"], ["get", "addon"], ["get", "addons.k3s.cattle.io"]):
        body = _get_ok("/apis/k3s.cattle.io/v1/addons")
        doc = json.loads(body)
        if output == "json":
            print(json.dumps(doc, indent=4))
        else:
            print("NAMESPACE     NAME")
            for item in doc["items"]:
                print(f"kube-system   {item['metadata']['name']}")
        return 0
    if words[:2] == ["delete", "node"] and len(words) > 2:
        status = 0
        for name in words[2:]:
            code, _ = _get(f"/api/v1/nodes/{name}", method="DELETE")
            if code == 200:
                print(f'node "{name}" deleted')
            else:
                print(f'Error from server (NotFound): nodes "{name}" not found', file=sys.stderr)
                status = 1
        return status
    print(f"error: the hydra lab's kubectl does not implement: {' '.join(argv)}", file=sys.stderr)
    return 1


def main(closure: Path, prog: str, argv: list[str]) -> int:
    settings = common.load_settings(closure)
    if prog == "kubectl":
        argv = ["kubectl", *argv]
    try:
        if argv[:1] in (["--version"], ["-v"], ["version"]):
            print(f"k3s version {settings['kubelet_version']} (hydra lab simulation)")
            print("go version go1.24.6")
            return 0
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
