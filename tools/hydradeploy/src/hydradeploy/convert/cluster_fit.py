"""The cluster-fit checks of `k8s-check` (hydradeploy.manifests) run over a conversion's
output, in the context of the rest of the repository's k8s/ tree and the inventory: a
port another app already publishes, a GPU the pinned host does not have, a ConfigMap
nobody creates show up at conversion time, not first in `just k8s-check`.

Only problems in this conversion's own objects are reported. Every registered check
runs; the `workloads` completeness rules (probes, requests, priority class: things a
source does not say) skip generated workloads inside the check itself, as in k8s-check.
`schema` (strict schemas) is test-side, not a registered check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydradeploy.convert import ownership
from hydradeploy.inventory import Inventory


def problems(
    out: Path,
    generated: dict[str, list[dict[str, Any]]],
    owner: str,
    inventory: Inventory,
    k8s_root: Path | None,
    skip: Path | None = None,
) -> list[str]:
    """One line per problem of the generated objects (path relative to --out)."""
    from hydradeploy.manifests import (
        CHECKS,
        Doc,
        ManifestError,
        Tree,
        load_documents,
        manifest_files,
    )
    from hydradeploy.versions import KUBERNETES_VERSION

    ours = []
    for rel in sorted(generated):
        file = out / rel
        ours += [Doc(file, i, doc) for i, doc in enumerate(generated[rel])]
    context: list[Any] = []
    if k8s_root is not None and k8s_root.is_dir():
        prefix = os.path.abspath(out) + os.sep

        def context_file(path: Path) -> bool:
            """Not a file this conversion writes again (its old version), not in the
            staging folder of a conversion (write.StagedTree), not skipped, and not
            written by this source before (a file's owner is its first line)."""
            a = os.path.abspath(path)
            return (
                not (a.startswith(prefix) and a[len(prefix) :] in generated)
                and not any(part.startswith(".hydradeploy-") for part in path.parts)
                and (skip is None or not path.is_relative_to(skip))
                and ownership.owner(path) != owner
            )

        # chosen before parsing: only the context is read
        files = [f for f in manifest_files(k8s_root) if context_file(f)]
        try:
            context = load_documents(k8s_root, files)
        except ManifestError as exc:
            return [f"k8s/ not checked with the output: {exc}"]
    tree = Tree(context + ours, inventory, KUBERNETES_VERSION)
    paths = {f"{out}/{rel}" for rel in generated}  # str(out / rel): Problem.where's file
    lines = []
    for check in CHECKS.values():
        for p in check(tree):
            path = p.where.partition("#")[0]  # Problem.where is "PATH#INDEX KIND NS/NAME"
            if path in paths:
                lines.append(f"[{p.check}] {path.removeprefix(f'{out}/')}: {p.message}")
    return sorted(set(lines))
