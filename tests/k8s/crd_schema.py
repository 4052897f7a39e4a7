"""Custom resources validated against their CRD's upstream openAPIV3Schema with a real
JSON-schema validator, strictly: what the API server would silently prune is an error.

Kubernetes' structural schemas are OpenAPI v3 subsets with extensions; they become JSON
Schema (draft 2020-12) as follows (Kubernetes docs, "Extend the Kubernetes API with
CustomResourceDefinitions", sections "Specifying a structural schema", "Field pruning",
"IntOrString", "RawExtension"; apiextensions-apiserver pkg/apiserver/schema/):
- an object schema with `properties` and no `additionalProperties` prunes unknown
  fields: here they are errors (additionalProperties: false);
- `x-kubernetes-preserve-unknown-fields: true` keeps them: left open;
- `x-kubernetes-int-or-string: true` admits an integer or a string;
- `nullable: true` admits null; a null elsewhere is pruned by the server, an error here;
- `metadata` is validated by the API server's ObjectMeta rules, not the CRD schema
  (only name and namespace are checked here, with the CRD's scope);
- `x-kubernetes-validations` (CEL rules) are not evaluated: a limit of these checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
from upstream_data import Crd

# keys of OpenAPI v3 that JSON Schema reads the same way
_PASS = {
    "type", "enum", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "minProperties",
    "maxProperties", "required", "multipleOf", "default", "description", "format",
}  # fmt: skip


def to_json_schema(s: Mapping[str, Any], at_root: bool = False) -> dict[str, Any]:
    """One openAPIV3Schema node as a strict JSON Schema node."""
    out: dict[str, Any] = {k: v for k, v in s.items() if k in _PASS}
    # OpenAPI v3.0's boolean exclusiveMinimum/Maximum become numbers in JSON Schema
    for bound, key in (
        ("minimum", "exclusiveMinimum"),
        ("maximum", "exclusiveMaximum"),
    ):
        if isinstance(out.get(key), bool) and out.pop(key) and bound in out:
            out[key] = out.pop(bound)
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    for key in ("allOf", "anyOf", "oneOf"):
        if key in s:
            subs = [to_json_schema(x) for x in s[key]]
            # a CRD's anyOf/oneOf constrains values only; its types come from the parent
            out[key] = out.get(key, []) + [_without_closed_objects(x) for x in subs]
    if "not" in s:
        out["not"] = _without_closed_objects(to_json_schema(s["not"]))
    if "items" in s:
        out["items"] = to_json_schema(s["items"])
    props = s.get("properties")
    if props is not None:
        out["properties"] = {
            k: (
                {"type": "object"} if at_root and k == "metadata" else to_json_schema(v)
            )
            for k, v in props.items()
        }
    additional = s.get("additionalProperties")
    if isinstance(additional, Mapping):
        out["additionalProperties"] = to_json_schema(additional)
    elif additional is not None:
        out["additionalProperties"] = additional
    elif s.get("type") == "object" and not s.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        out["additionalProperties"] = False  # the server would prune: an error here
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def _without_closed_objects(s: dict[str, Any]) -> dict[str, Any]:
    """anyOf/oneOf branches of CRDs list only which fields must be present; closing them
    to unknown fields would reject every value, so they stay open."""
    s = dict(s)
    if s.get("additionalProperties") is False:
        del s["additionalProperties"]
    return s


_VALIDATORS: dict[tuple[str, str], jsonschema.protocols.Validator] = {}


def _validator(version: str, crd: Crd) -> jsonschema.protocols.Validator:
    key = (crd.source, version)
    if key not in _VALIDATORS:
        schema = to_json_schema(crd.schemas[version], at_root=True)
        _VALIDATORS[key] = jsonschema.Draft202012Validator(schema)
    return _VALIDATORS[key]


def crd_errors(obj: Mapping[str, Any], crd: Crd) -> list[str]:
    """Why the API server serving `crd` would refuse (or silently change) `obj`; [] when
    it would store it as written."""
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    where = crd.source
    if group != crd.group:
        return [f"{api_version} is not of group {crd.group} ({where})"]
    if version not in crd.schemas:
        return [f"{where} serves {', '.join(sorted(crd.schemas))}, not {version}"]
    out = []
    meta = obj.get("metadata") or {}
    if not meta.get("name"):
        out.append("metadata.name is required")
    if crd.namespaced and not meta.get("namespace"):
        out.append(
            f"{crd.kind} is namespaced ({where}): metadata.namespace is required"
        )
    if not crd.namespaced and meta.get("namespace"):
        out.append(f"{crd.kind} is cluster-scoped ({where}): remove metadata.namespace")
    v = _validator(version, crd)
    for err in sorted(
        v.iter_errors(dict(obj)), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        path = ".".join(str(p) for p in err.absolute_path) or "(document)"
        message = err.message if len(err.message) <= 240 else err.message[:239] + "…"
        out.append(f"{path}: {message} ({where})")
    return out
