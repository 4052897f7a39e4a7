"""The cluster-fit checks of `k8s-check` (hydradeploy.manifests) run over a conversion's
output, in the context of the rest of the repository's k8s/ tree and the inventory: a
port another app already publishes, a GPU the pinned host does not have, a ConfigMap
nobody creates show up at conversion time, not first in `just k8s-check`.

Only problems in this conversion's own objects are reported. Not run: the `workloads`
completeness rules (probes, requests, priority class: things a source does not say;
k8s-check skips them for generated manifests too), `services` (every generated
Service selects its own pod template by construction, tested in tests/convert; the
check compares every Service with every pod, quadratic at 1,000 containers) and
`schema` (strict schemas, test-side).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydradeploy.convert import ownership
from hydradeploy.inventory import Inventory

NOT_FOR_GENERATED = frozenset({"workloads", "services"})


def _indexed_tree(base: Any) -> Any:
    """The checks ask `of_kind` once per pod (RuntimeClasses, GPU nodes): at 1,000
    containers a scan of every document each time; and every check parses each
    HelmChart's values again. The documents never change here: answer from an index."""

    class IndexedTree(base):  # type: ignore[misc, valid-type]
        def of_kind(self, kind: str, group: str | None = None) -> list[Any]:
            index = self.__dict__.setdefault("_by_kind", {})
            if (kind, group) not in index:
                index[(kind, group)] = base.of_kind(self, kind, group)
            return list(index[(kind, group)])

        def values(self, d: Any) -> Any:
            # a HelmChart's valuesContent is parsed once, not once per check asking
            cache = self.__dict__.setdefault("_values", {})
            if id(d) not in cache:
                cache[id(d)] = base.values(self, d)
            return cache[id(d)]

    return IndexedTree


def problems(
    out: Path,
    generated: dict[str, list[dict[str, Any]]],
    owner: str,
    inventory: Inventory,
    k8s_root: Path | None,
    skip: Path | None = None,
) -> list[str]:
    """One line per problem of the generated objects (path relative to --out)."""
    from hydradeploy.manifests import CHECKS, Doc, ManifestError, Tree, load_documents
    from hydradeploy.versions import KUBERNETES_VERSION

    ours = [
        Doc(out / rel, i, doc) for rel in sorted(generated) for i, doc in enumerate(generated[rel])
    ]
    context: list[Any] = []
    if k8s_root is not None and k8s_root.is_dir():
        mine = {os.path.abspath(d.path) for d in ours}
        try:
            context = [
                d
                for d in load_documents(k8s_root)
                if os.path.abspath(d.path) not in mine
                and ownership.owner(d.path) != owner
                # the conversion's own staging folder (write.StagedTree) is not k8s/
                and not any(part.startswith(".hydradeploy-") for part in d.path.parts)
                and (skip is None or not d.path.is_relative_to(skip))
            ]
        except ManifestError as exc:
            return [f"k8s/ not checked with the output: {exc}"]
    tree = _indexed_tree(Tree)(context + ours, inventory, KUBERNETES_VERSION)
    paths = {str(d.path) for d in ours}
    lines = []
    for name, check in CHECKS.items():
        if name in NOT_FOR_GENERATED:
            continue
        for p in check(tree):
            path = p.where.partition("#")[0]  # Problem.where is "PATH#INDEX KIND NS/NAME"
            if path in paths:
                lines.append(f"[{p.check}] {path.removeprefix(f'{out}/')}: {p.message}")
    return sorted(set(lines))
