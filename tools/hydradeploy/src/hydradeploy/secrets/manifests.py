"""Secret manifests: what `import` and `edit` accept — exactly one v1 Secret per file,
with a name and a namespace, and data that Kubernetes would accept."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

import yaml

from hydradeploy.kube_names import is_dns1123_label

SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DATA_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")


class InvalidSecret(ValueError):
    pass


@dataclass(frozen=True)
class SecretManifest:
    namespace: str
    name: str

    @property
    def file_name(self) -> str:
        """The name under secrets/manifests/ and in the k3s manifests directory."""
        return f"{self.namespace}-{self.name}"


def parse_secret(data: bytes, default_namespace: str | None = None) -> SecretManifest:
    """Validate one v1 Secret; InvalidSecret says what is wrong (without its values)."""
    try:
        docs = [d for d in yaml.safe_load_all(data.decode("utf-8")) if d is not None]
    except UnicodeDecodeError:
        raise InvalidSecret("not UTF-8 text") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise InvalidSecret(f"not valid YAML{line}") from None
    if len(docs) != 1:
        raise InvalidSecret(f"must hold exactly one Secret, found {len(docs)} documents")
    doc: Any = docs[0]
    if not isinstance(doc, dict):
        raise InvalidSecret("not a Kubernetes object (expected a mapping)")
    if doc.get("apiVersion") != "v1" or doc.get("kind") != "Secret":
        raise InvalidSecret(
            f"must be apiVersion v1, kind Secret (found {doc.get('apiVersion')!r}, {doc.get('kind')!r})"
        )
    allowed = {"apiVersion", "kind", "metadata", "type", "data", "stringData", "immutable"}
    extra = sorted(set(doc) - allowed)
    if extra:
        raise InvalidSecret(f"unknown field {extra[0]!r} in a Secret")
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        raise InvalidSecret("metadata is missing")
    name = meta.get("name")
    if not isinstance(name, str) or not SUBDOMAIN_RE.match(name) or len(name) > 253:
        raise InvalidSecret(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    namespace = meta.get("namespace", default_namespace)
    if not isinstance(namespace, str) or not is_dns1123_label(namespace):
        raise InvalidSecret(
            "metadata.namespace is missing or not a DNS-1123 label (k3s would apply it to 'default')"
        )
    if "namespace" in meta and default_namespace and meta["namespace"] != default_namespace:
        raise InvalidSecret(
            f"metadata.namespace {meta['namespace']!r} does not match its directory {default_namespace!r}"
        )
    if "type" in doc and not isinstance(doc["type"], str):
        raise InvalidSecret("type must be a string")
    if "immutable" in doc and not isinstance(doc["immutable"], bool):
        raise InvalidSecret("immutable must be true or false")
    seen: set[str] = set()
    for field in ("data", "stringData"):
        if field not in doc or doc[field] is None:
            continue
        values = doc[field]
        if not isinstance(values, dict):
            raise InvalidSecret(f"{field} must be a mapping")
        for key, value in values.items():
            if not isinstance(key, str) or not DATA_KEY_RE.match(key) or len(key) > 253:
                raise InvalidSecret(f"{field} key {key!r} is not a valid Secret key")
            if not isinstance(value, str):
                raise InvalidSecret(f"{field}.{key} must be a string")
            if field == "data":
                try:
                    base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidSecret(f"data.{key} is not valid base64") from None
            seen.add(key)
    if not seen:
        raise InvalidSecret("has no data or stringData")
    return SecretManifest(namespace=namespace, name=name)


def secret_values(data: bytes) -> list[str]:
    """The plaintext values of a Secret manifest (decoded data and stringData), for the
    scan that makes sure none of them appears anywhere else in the repository."""
    out: list[str] = []
    try:
        docs = list(yaml.safe_load_all(data.decode("utf-8")))
    except (UnicodeDecodeError, yaml.YAMLError):
        return out
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        for _key, value in (doc.get("stringData") or {}).items():
            if isinstance(value, str):
                out.append(value)
        for _key, value in (doc.get("data") or {}).items():
            if isinstance(value, str):
                try:
                    out.append(base64.b64decode(value).decode("utf-8"))
                except (binascii.Error, ValueError):
                    continue
    return out
