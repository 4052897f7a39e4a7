"""What the upstream CRD schemas do not say but the API server still refuses: rules that
a project's admission webhook enforces. Everything a CRD's openAPIV3Schema covers (keys,
types, enums, required fields, scope) is checked against the upstream CRDs themselves
(crd_schema.py); only what is left lives here, each rule with its upstream source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# cert-manager v1.21.1, internal/apis/certmanager/validation/issuer.go
# ValidateIssuerConfig (the webhook, for Issuer and ClusterIssuer): "may not specify more
# than one issuer type" and "at least one issuer must be configured", over acme, ca,
# selfSigned, vault and venafi.
ISSUER_TYPES = ("acme", "ca", "selfSigned", "vault", "venafi")


def _one_issuer_type(obj: Mapping[str, Any]) -> list[str]:
    spec = obj.get("spec") or {}
    kinds = [k for k in ISSUER_TYPES if spec.get(k) is not None]
    if len(kinds) > 1:
        return [f"spec: may not specify more than one issuer type ({', '.join(kinds)})"]
    if not kinds:
        return [
            f"spec: at least one issuer must be configured ({', '.join(ISSUER_TYPES)})"
        ]
    return []


WEBHOOK_RULES: dict[tuple[str, str], Callable[[Mapping[str, Any]], list[str]]] = {
    ("cert-manager.io", "Issuer"): _one_issuer_type,
    ("cert-manager.io", "ClusterIssuer"): _one_issuer_type,
}
