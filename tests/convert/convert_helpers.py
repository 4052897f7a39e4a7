"""Helpers for converter tests: in-process conversion and strict schema validation."""

from __future__ import annotations

import functools
from typing import Any

from hydradeploy.convert.emit import Conversion, EmitOptions, convert
from hydradeploy.convert.oci_containers import load_podman
from hydradeploy.versions import KUBERNETES_VERSION


@functools.cache
def _validator() -> Any:
    import kubernetes_validate

    return kubernetes_validate


def validate_strict(doc: dict[str, Any]) -> None:
    """Raise when `doc` is not a valid object of the cluster's Kubernetes version."""
    _validator().validate(doc, KUBERNETES_VERSION, strict=True)


def podman(
    containers: dict[str, dict[str, Any]],
    host: str | None = "hydra-ai",
    gpus: dict[str, int] | None = None,
    namespace: str = "apps",
) -> Conversion:
    source = load_podman(containers, "test.json", host)
    counts = gpus or {}
    return convert(
        source,
        EmitOptions(namespace=namespace, host=host, gpu_count=lambda v: counts.get(v)),
    )


def workload(conv: Conversion, name: str) -> dict[str, Any]:
    docs = conv.files[f"{conv.namespace}/{name}.yaml"]
    return next(d for d in docs if d["kind"] in ("Deployment", "StatefulSet"))


def services(conv: Conversion, name: str) -> dict[str, dict[str, Any]]:
    docs = conv.files[f"{conv.namespace}/{name}.yaml"]
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}


def messages(conv: Conversion, name: str, kind: str | None = None) -> list[str]:
    result = next(r for r in conv.containers if r.name == name)
    return [n.message for n in result.notes if kind is None or n.kind == kind]


def _root_run_cli() -> Any:
    """The run_cli of tests/conftest.py, loaded by path (a plain `import conftest` could
    pick up another directory's conftest when the whole suite runs)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_hydra_root_conftest", Path(__file__).parent.parent / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_cli


run_cli = _root_run_cli()
