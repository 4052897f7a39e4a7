"""The converter keeps only what the cluster-fit checks read of its output
(hydradeploy.manifests.read_set): every check must find the same problems in stripped
documents as in whole ones."""

from __future__ import annotations

import copy
import random
import sys
from pathlib import Path
from typing import Any

from convert_helpers import podman
from hydradeploy.inventory import load_inventory
from hydradeploy.manifests import Doc, Tree, load_documents, run_all
from hydradeploy.manifests.read_set import strip_unread
from hydradeploy.versions import KUBERNETES_VERSION

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "bench"))
from bench_convert import container


def _problems(docs: list[Doc], strip: bool) -> list[str]:
    objs = [copy.deepcopy(d.obj) for d in docs]
    if strip:
        for o in objs:
            strip_unread(o)
    inv = load_inventory(REPO / "hosts" / "inventory.toml")
    tree = Tree(
        [Doc(d.path, d.index, o) for d, o in zip(docs, objs, strict=True)],
        inv,
        KUBERNETES_VERSION,
    )
    return [str(p) for p in run_all(tree)]


def _context() -> list[Doc]:
    k8s = REPO / "k8s"
    return [d for d in load_documents(k8s) if k8s / "converted" not in d.path.parents]


def test_converted_output_has_the_same_problems_stripped() -> None:
    rng = random.Random(7)
    conv = podman(
        {f"app-{i}": container(i, rng) for i in range(120)}, namespace="hydra-ai"
    )
    out = Path("/out")
    ours = [
        Doc(out / rel, i, d)
        for rel, docs in sorted(conv.files.items())
        for i, d in enumerate(docs)
    ]
    whole = _problems(_context() + ours, strip=False)
    stripped = _problems(_context() + ours, strip=True)
    assert stripped == whole
    # the input makes the checks that read generated objects fire (ports, GPUs, env)
    fired = {p.split("[", 1)[1].split("]", 1)[0] for p in whole if "[" in p}
    assert {"gpu-fit", "inventory-values", "k3s-components"} <= fired, fired


def _break(obj: dict[str, Any]) -> None:
    """Make the checks that read containers fire on a hand-written workload: no readiness
    probe, a literal secret, a GPU request without a limit in an init container."""
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec")
    if not isinstance(spec, dict) or not spec.get("containers"):
        return
    c = spec["containers"][0]
    c.pop("readinessProbe", None)
    c.setdefault("env", []).append({"name": "API_TOKEN", "value": "hunter2-hunter2"})
    spec["initContainers"] = [
        {
            "name": "init",
            "image": "busybox",
            "resources": {"requests": {"nvidia.com/gpu": 1}},
        }
    ]


def test_hand_written_tree_has_the_same_problems_stripped() -> None:
    docs = _context()
    for d in docs:
        if d.kind in ("Deployment", "StatefulSet"):
            _break(d.obj)
    whole = _problems(docs, strip=False)
    assert any("[workloads]" in p and "readinessProbe" in p for p in whole)
    assert any("[no-secrets]" in p for p in whole)
    assert any("[gpu-fit]" in p and "asks for" in p for p in whole)
    assert _problems(docs, strip=True) == whole


def test_an_in_process_conversion_leaves_the_garbage_collector_on(
    tmp_path: Path,
) -> None:
    """The converter turns the cyclic GC off for speed (convert/cli.py); a caller that
    goes on in the same process (a test run, a script) gets it back."""
    import gc

    from hydradeploy.cli import main

    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx:1.27\n")
    assert gc.isenabled()
    main(["convert", "compose-to-k8s", str(compose), "--out", str(tmp_path / "out")])
    assert (tmp_path / "out").is_dir() and gc.isenabled()
