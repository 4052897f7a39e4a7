"""Checks of the k8s/ tree: the cluster-fit checks of hydradeploy.manifests plus the
schema check, which needs the test extra (kubernetes-validate) and so stays test-side.

Reusable on any directory of manifests (k8s/, k8s/converted/, a test's tmp dir) and any
inventory. Each check is a function `(Tree) -> list[Problem]`; `run_all` runs them all.
Built-in kinds are validated against kubernetes-validate's strict JSON schemas, loaded
once per process; custom resources against the upstream CRDs (crd_schema.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from crd_rules import WEBHOOK_RULES
from crd_schema import crd_errors
from hydradeploy.manifests import CHECKS as CLUSTER_CHECKS
from hydradeploy.manifests import (
    Check,
    Doc,
    ManifestError,
    Problem,
    Tree,
    chart_values,
    load_documents,
    quantity,
    referenced_secrets,
)
from hydradeploy.manifests import run_all as run_checks
from referencing import Registry, Resource
from upstream_data import UPSTREAM, chart_defaults, served_crds, values_schemas
from values_schema import values_errors

__all__ = [
    "CHECKS",
    "Doc",
    "ManifestError",
    "Problem",
    "Tree",
    "chart_values",
    "load_documents",
    "quantity",
    "referenced_secrets",
    "run_all",
    "schema_validator",
]

# --------------------------------------------------------------------------- schemas


class SchemaValidator:
    """kubernetes-validate's strict schemas for one Kubernetes version, each schema file
    and the shared definitions read once (kubernetes_validate.validate re-reads the 1.5 MB
    definitions for every document)."""

    def __init__(self, version: str) -> None:
        base = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
        want = _minor(version)
        available = sorted(
            (_minor(p.name[1:].split("-")[0]), p.name)
            for p in base.iterdir()
            if p.name.startswith("v") and p.name.endswith("-local-strict")
        )
        usable = [name for minor, name in available if minor <= want]
        if not usable:
            raise ValueError(
                f"kubernetes-validate has no schemas for Kubernetes {version}"
            )
        self.schema_dir = base.joinpath(usable[-1])
        self.version = usable[-1][1:].split("-")[0]
        defs = json.loads(self.schema_dir.joinpath("_definitions.json").read_text())
        self.registry: Registry[Any] = Resource.from_contents(defs) @ Registry()
        self._validators: dict[
            tuple[str, str], jsonschema.protocols.Validator | None
        ] = {}

    def _validator(
        self, api_version: str, kind: str
    ) -> jsonschema.protocols.Validator | None:
        key = (api_version, kind)
        if key not in self._validators:
            # kubernetes-validate's file naming: apps/v1 -> apps-v1, rbac.authorization.k8s.io/v1 -> rbac-v1
            munged = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            f = self.schema_dir.joinpath(f"{kind.lower()}-{munged}.json")
            if f.is_file():
                schema = json.loads(f.read_text())
                self._validators[key] = jsonschema.Draft202012Validator(
                    schema, registry=self.registry
                )
            else:
                self._validators[key] = None
        return self._validators[key]

    def has_schema(self, api_version: str, kind: str) -> bool:
        return self._validator(api_version, kind) is not None

    def errors(self, obj: Mapping[str, Any]) -> list[str]:
        v = self._validator(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if v is None:
            raise KeyError("no schema")
        out = []
        for err in sorted(
            v.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))
        ):
            path = ".".join(str(p) for p in err.absolute_path) or "(document)"
            out.append(f"{path}: {_short(err.message)}")
        return out


def _minor(version: str) -> tuple[int, int]:
    parts = version.lstrip("v").split(".")
    return int(parts[0]), int(parts[1])


def _short(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@cache
def schema_validator(version: str) -> SchemaValidator:
    return SchemaValidator(version)


def check_schema(t: Tree) -> list[Problem]:
    """Built-in kinds against kubernetes-validate --strict; custom resources against the
    upstream CRD schema of every release the supported k3s range may serve (crd_schema,
    upstream_data), plus the webhook rules left in crd_rules. Without the upstream data
    custom resources are not checked here (test_crds_validate_against_upstream skips and
    says why)."""
    sv = schema_validator(t.kubernetes_version)
    crds = served_crds(t.kubernetes_version) if UPSTREAM.is_dir() else None
    out = []
    for d in t.docs:
        if not d.api_version or not d.kind:
            out.append(Problem(str(d), "schema", "document has no apiVersion or kind"))
            continue
        if sv.has_schema(d.api_version, d.kind):
            out.extend(Problem(str(d), "schema", e) for e in sv.errors(d.obj))
            continue
        if crds is None:
            continue
        releases = crds.get((d.group, d.kind))
        if not releases:
            out.append(
                Problem(
                    str(d),
                    "schema",
                    f"{d.api_version} {d.kind} has no Kubernetes {sv.version} schema and no "
                    f"upstream CRD in {UPSTREAM}/crds",
                )
            )
            continue
        for crd in releases:
            out.extend(Problem(str(d), "crd", m) for m in crd_errors(d.obj, crd))
        rule = WEBHOOK_RULES.get((d.group, d.kind))
        if rule is not None:
            out.extend(Problem(str(d), "crd", m) for m in rule(d.obj))
    return out


def check_values_schema(t: Tree) -> list[Problem]:
    """Each HelmChart's values, coalesced with the chart's defaults, against the chart's
    upstream values schema (values_schema.py); nothing to do without the upstream data."""
    if not UPSTREAM.is_dir():
        return []
    out = []
    for d in t.of_kind("HelmChart"):
        chart = t.defaults_of(d)
        if chart is not None:
            errors = values_errors(chart_values(d), chart, values_schemas())
            out.extend(Problem(str(d), "values-schema", e) for e in errors)
    return out


# The schema checks first, then hydradeploy.manifests' cluster-fit checks.
CHECKS: dict[str, Check] = {
    "schema": check_schema,
    "values-schema": check_values_schema,
    **CLUSTER_CHECKS,
}


def run_all(t: Tree, only: Iterable[str] | None = None) -> list[Problem]:
    return run_checks(t, only, CHECKS)


def main(argv: list[str] | None = None) -> int:
    """`python tests/k8s/manifest_checks.py [DIR] [--inventory FILE] [--check NAME]…`:
    every problem on one line; exit 1 when there are problems, 2 on bad input."""
    import argparse
    import sys

    from hydradeploy.errors import UserError
    from hydradeploy.inventory import load_inventory
    from hydradeploy.versions import KUBERNETES_VERSION

    repo = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(prog="manifest_checks", description=__doc__)
    ap.add_argument("dir", nargs="?", type=Path, default=repo / "k8s")
    ap.add_argument("--inventory", type=Path, default=repo / "hosts" / "inventory.toml")
    ap.add_argument("--check", action="append", choices=sorted(CHECKS))
    args = ap.parse_args(argv)
    try:
        inv = load_inventory(args.inventory)
        docs = load_documents(args.dir)
    except (UserError, ManifestError) as exc:
        print(f"manifest_checks: error: {exc}", file=sys.stderr)
        return 2
    defaults = chart_defaults() if UPSTREAM.is_dir() else {}
    problems = run_all(Tree(docs, inv, KUBERNETES_VERSION, defaults), args.check)
    for p in problems:
        print(p)
    print(
        f"{len(docs)} documents, {len(args.check or CHECKS)} checks, {len(problems)} problems",
        file=sys.stderr,
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
