"""`k3s kubectl get|create|delete` for the objects of the simulated k3s (k3s_objects),
with kubectl's messages and exit codes:

  get TYPE[,TYPE…] [NAME…] [-n NS | -A] [-l SELECTOR] [-o json|name]
  create -f FILE|-   create namespace NAME   create configmap NAME [--from-literal=K=V]…
  delete TYPE NAME… [-n NS] [--ignore-not-found]   delete -f FILE|- (objects or a List)
  label TYPE NAME… KEY=VALUE|KEY-… [-n NS] [--overwrite]

TYPE: plural, singular, short name or plural.group (`deployments.apps`), also the kinds
of stored CRDs. Nodes and --raw stay with k3s_cli.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .k3s_objects import BUILTIN, Kind


def _request(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    from .k3s_cli import KubectlError, _api_base

    base, hostport = _api_base()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
    except OSError:
        raise KubectlError(
            f"The connection to the server {hostport} was refused - did you specify the right "
            "host or port?"
        ) from None


REASONS = {400: "BadRequest", 404: "NotFound", 409: "AlreadyExists", 422: "Invalid",
           503: "ServiceUnavailable"}  # fmt: skip


def _fail(code: int, body: Any) -> str:
    reason = REASONS.get(code, "InternalError")
    return f"Error from server ({reason}): {body.get('message', 'unknown error')}"


def _kinds() -> list[Kind]:
    kinds = list(BUILTIN)
    code, body = _request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    for crd in body.get("items", []) if code == 200 else []:
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        for ver in spec.get("versions", []):
            kinds.append(Kind(names.get("kind", ""), spec.get("group", ""), ver.get("name", ""),
                              names.get("plural", ""), spec.get("scope") != "Cluster",
                              tuple(names.get("shortNames", []))))  # fmt: skip
    return kinds


def resolve(word: str, kinds: list[Kind]) -> Kind | None:
    word = word.lower()
    for k in kinds:
        names = {k.plural, k.kind.lower(), *k.short}
        if word in names or word in {f"{n}.{k.group}" for n in (k.plural, k.kind.lower())}:
            return k
    return None


def _path(k: Kind, namespace: str | None, name: str | None = None) -> str:
    root = f"/apis/{k.group}/{k.version}" if k.group else "/api/v1"
    ns = f"/namespaces/{namespace}" if k.namespaced and namespace else ""
    return f"{root}{ns}/{k.plural}" + (f"/{name}" if name else "")


def _ref(k: Kind) -> str:
    """kubectl's "kind.group" in create/delete messages: deployment.apps, configmap."""
    return f"{k.kind.lower()}.{k.group}" if k.group else k.kind.lower()


def _parse(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    opts: dict[str, Any] = {"namespace": None, "all": False, "selector": "", "output": None,
                            "files": [], "literals": [], "ignore": False}  # fmt: skip
    words: list[str] = []
    i = 0
    takes = {"-n": "namespace", "--namespace": "namespace", "-l": "selector",
             "--selector": "selector", "-o": "output", "--output": "output"}  # fmt: skip
    while i < len(argv):
        arg = argv[i]
        key, eq, val = arg.partition("=")
        if arg in takes and i + 1 < len(argv):
            opts[takes[arg]] = argv[i + 1]
            i += 1
        elif eq and key in takes:
            opts[takes[key]] = val
        elif arg in ("-f", "--filename") and i + 1 < len(argv):
            opts["files"].append(argv[i + 1])
            i += 1
        elif key == "--from-literal" and eq:
            opts["literals"].append(val)
        elif arg in ("-A", "--all-namespaces"):
            opts["all"] = True
        elif arg == "--ignore-not-found":
            opts["ignore"] = True
        elif arg.startswith("-"):
            pass
        else:
            words.append(arg)
        i += 1
    return words, opts


NODES = ("node", "nodes", "no")
LEASES = ("lease", "leases", "lease.coordination.k8s.io", "leases.coordination.k8s.io")


def kubectl(argv: list[str]) -> int | None:
    """The exit status, or None when these arguments are for k3s_cli (nodes, --raw)."""
    words, opts = _parse(argv)
    if not words or words[0] not in ("get", "create", "delete", "label"):
        return None
    if any(a == "--raw" or a.startswith("--raw=") for a in argv):
        return None
    if words[1:2] and words[1].split(",")[0] in NODES + LEASES:  # these stay with k3s_cli
        return None
    if words[0] == "get":
        return _get(words[1:], opts)
    if words[0] == "delete":
        return _delete(words[1:], opts)
    if words[0] == "label":
        return _label(words[1:], opts)
    return _create(words[1:], opts)


def _get(words: list[str], opts: dict[str, Any]) -> int:
    if not words:
        print("error: you must specify the type of resource to get", file=sys.stderr)
        return 1
    kinds = _kinds()
    types = []
    for word in words[0].split(","):
        k = resolve(word, kinds)
        if k is None:
            print(f'error: the server doesn\'t have a resource type "{word}"', file=sys.stderr)
            return 1
        types.append(k)
    names = words[1:]
    namespace = None if opts["all"] else (opts["namespace"] or "default")
    found: list[dict[str, Any]] = []
    status = 0
    for k in types:
        if names:
            for name in names:
                code, body = _request("GET", _path(k, namespace or "default", name))
                if code == 200:
                    found.append(body)
                else:
                    print(_fail(code, body), file=sys.stderr)
                    status = 1
            continue
        query = "?labelSelector=" + urllib.parse.quote(opts["selector"]) if opts["selector"] else ""
        code, body = _request("GET", _path(k, namespace) + query)
        if code != 200:
            print(_fail(code, body), file=sys.stderr)
            return 1
        found.extend(body.get("items", []))
    if opts["output"] == "json":
        single = len(names) == 1 and len(types) == 1
        if single and found:
            print(json.dumps(found[0], indent=4))
        elif not single:
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": found,
                              "metadata": {"resourceVersion": ""}}, indent=4))  # fmt: skip
        return status
    if not found and not names:
        where = "" if namespace is None else f" in {namespace} namespace"
        print(f"No resources found{where}.", file=sys.stderr)
        return status
    for obj in found:
        meta = obj["metadata"]
        if opts["output"] == "name":
            print(f"{_ref(resolve(obj['kind'], kinds) or types[0])}/{meta['name']}")
        else:
            ns = f"{meta.get('namespace', '')}   " if opts["all"] else ""
            print(f"{ns}{meta['name']}")
    return status


def _read_docs(files: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The objects of -f FILEs (YAML or JSON; a List's items one by one)."""
    import yaml

    docs: list[tuple[str, dict[str, Any]]] = []
    for name in files:
        if name == "-":
            text = sys.stdin.read()
        else:
            with open(name) as handle:
                text = handle.read()
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List"):
                docs.extend((name, item) for item in doc.get("items") or [])
            elif doc:
                docs.append((name, doc))
    return docs


def _kind_of(doc: dict[str, Any], kinds: list[Kind]) -> Kind | None:
    group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
    return next(
        (
            x
            for x in kinds
            if x.kind == doc.get("kind") and x.group == group and x.version == version
        ),
        None,
    )


def _delete_files(opts: dict[str, Any]) -> int:
    kinds = _kinds()
    status = 0
    for _source, doc in _read_docs(opts["files"]):
        k = _kind_of(doc, kinds)
        meta = doc.get("metadata") or {}
        if k is None:
            print(
                f'error: resource mapping not found for kind "{doc.get("kind")}"', file=sys.stderr
            )
            status = 1
            continue
        ns = meta.get("namespace") or opts["namespace"] or "default"
        code, body = _request("DELETE", _path(k, ns, meta.get("name", "")))
        if code == 200:
            print(f'{_ref(k)} "{meta.get("name")}" deleted')
        elif not (code == 404 and opts["ignore"]):
            print(_fail(code, body), file=sys.stderr)
            status = 1
    return status


def _delete(words: list[str], opts: dict[str, Any]) -> int:
    if opts["files"]:
        return _delete_files(opts)
    if len(words) < 2:
        print("error: resource(s) were provided, but no name was specified", file=sys.stderr)
        return 1
    k = resolve(words[0], _kinds())
    if k is None:
        print(f'error: the server doesn\'t have a resource type "{words[0]}"', file=sys.stderr)
        return 1
    status = 0
    for name in words[1:]:
        code, body = _request("DELETE", _path(k, opts["namespace"] or "default", name))
        if code == 200:
            print(f'{_ref(k)} "{name}" deleted')
        elif code == 404 and opts["ignore"]:
            continue
        else:
            print(_fail(code, body), file=sys.stderr)
            status = 1
    return status


def _label(words: list[str], opts: dict[str, Any]) -> int:
    k = resolve(words[0], _kinds()) if words else None
    if k is None:
        print(f"error: cannot label {' '.join(words)}", file=sys.stderr)
        return 1
    names = [w for w in words[1:] if "=" not in w and not w.endswith("-")]
    changes = [w for w in words[1:] if w not in names]
    status = 0
    for name in names:
        path = _path(k, opts["namespace"] or "default", name)
        code, body = _request("GET", path)
        if code != 200:
            print(_fail(code, body), file=sys.stderr)
            status = 1
            continue
        labels = body["metadata"].setdefault("labels", {})
        for change in changes:
            key, eq, value = change.partition("=")
            if eq:
                labels[key] = value
            else:
                labels.pop(change[:-1], None)
        code, body = _request("PUT", path, body)
        if code != 200:
            print(_fail(code, body), file=sys.stderr)
            status = 1
        else:
            print(f"{_ref(k)}/{name} labeled")
    return status


def _create(words: list[str], opts: dict[str, Any]) -> int:
    docs: list[tuple[str, dict[str, Any]]] = []
    if opts["files"]:
        docs = _read_docs(opts["files"])
    elif words[:1] in (["namespace"], ["ns"]) and len(words) == 2:
        docs.append(("", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": words[1]}}))
    elif words[:1] in (["configmap"], ["cm"]) and len(words) == 2:
        data = dict(lit.split("=", 1) for lit in opts["literals"] if "=" in lit)
        docs.append(("", {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": words[1]}, "data": data}))  # fmt: skip
    else:
        print(f"error: the hydra lab's kubectl cannot create {' '.join(words)}", file=sys.stderr)
        return 1
    kinds = _kinds()
    status = 0
    for source, doc in docs:
        k = _kind_of(doc, kinds)
        if k is None:
            print(
                f'error: resource mapping not found for kind "{doc.get("kind")}"', file=sys.stderr
            )
            status = 1
            continue
        namespace = doc.get("metadata", {}).get("namespace") or opts["namespace"] or "default"
        code, body = _request("POST", _path(k, namespace), doc)
        if code == 201:
            print(f"{_ref(k)}/{doc['metadata']['name']} created")
        else:
            where = f'error when creating "{source}": ' if source else ""
            print(f"Error from server ({REASONS.get(code, 'InternalError')}): {where}"
                  f"{body.get('message', '')}", file=sys.stderr)  # fmt: skip
            status = 1
    return status
