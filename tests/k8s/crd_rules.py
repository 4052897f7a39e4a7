"""Hand-written rules for the custom resources under k8s/.

kubernetes-validate ships schemas for built-in kinds only, and we do not commit fetched
upstream CRD schemas. So each CRD kind we use gets a rule written here from the CRD's Go
types: the top-level keys and spec keys it accepts, the fields it requires (with their
type), and any extra semantic check. A document of a kind without a rule fails the
schema check, so adding a new CRD kind means adding its rule.

Sources (read, not copied): k3s-io/helm-controller pkg/apis/helm.cattle.io/v1/types.go,
kubernetes-sigs/kueue apis/kueue/v1beta2, cert-manager pkg/apis/certmanager/v1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

OBJECT_KEYS = frozenset({"apiVersion", "kind", "metadata", "spec"})


@dataclass(frozen=True)
class CrdRule:
    kind: str
    namespaced: bool
    # dotted path -> required Python type of the value
    required: Mapping[str, type | tuple[type, ...]] = field(default_factory=dict)
    # allowed keys of spec; None when the kind has no spec (checked by `extra`)
    spec_keys: frozenset[str] | None = None
    top_level: frozenset[str] = OBJECT_KEYS
    extra: Callable[[Mapping[str, Any]], list[str]] | None = None


HELMCHART_SPEC = frozenset(
    {
        "targetNamespace", "createNamespace", "chart", "version", "repo", "repoCA",
        "repoCAConfigMap", "set", "values", "valuesContent", "valuesSecrets", "helmVersion",
        "bootstrap", "takeOwnership", "serverSide", "forceConflicts", "chartContent",
        "jobImage", "backOffLimit", "timeout", "failurePolicy", "authSecret",
        "authPassCredentials", "insecureSkipTLSVerify", "plainHTTP", "dockerRegistrySecret",
        "podSecurityContext", "securityContext", "driver",
    }
)  # fmt: skip


def _helmchart(obj: Mapping[str, Any]) -> list[str]:
    spec = obj.get("spec") or {}
    out = []
    if spec.get("failurePolicy") not in (None, "abort", "reinstall", "retry"):
        out.append("spec.failurePolicy must be abort, reinstall or retry")
    if not spec.get("chart") and not spec.get("chartContent"):
        out.append("spec.chart (or spec.chartContent) is required")
    if "timeout" in spec and not (
        isinstance(spec["timeout"], str) and spec["timeout"][-1:] in "smh"
    ):
        out.append("spec.timeout must be a duration such as 10m")
    return out


def _quantity(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _cluster_queue(obj: Mapping[str, Any]) -> list[str]:
    out = []
    spec = obj.get("spec") or {}
    if spec.get("queueingStrategy") not in (None, "StrictFIFO", "BestEffortFIFO"):
        out.append("spec.queueingStrategy must be StrictFIFO or BestEffortFIFO")
    for i, g in enumerate(spec.get("resourceGroups") or []):
        if not g.get("coveredResources"):
            out.append(f"spec.resourceGroups[{i}].coveredResources is required")
        for j, f in enumerate(g.get("flavors") or []):
            if not f.get("name"):
                out.append(f"spec.resourceGroups[{i}].flavors[{j}].name is required")
            for r in f.get("resources") or []:
                if not r.get("name") or not _quantity(r.get("nominalQuota")):
                    out.append(
                        f"spec.resourceGroups[{i}].flavors[{j}]: every resource needs a name "
                        "and a nominalQuota quantity"
                    )
    return out


def _issuer(obj: Mapping[str, Any]) -> list[str]:
    spec = obj.get("spec") or {}
    kinds = {"selfSigned", "ca", "acme", "vault", "venafi"} & set(spec)
    return (
        []
        if len(kinds) == 1
        else ["spec must name exactly one issuer type (selfSigned, ca, acme, …)"]
    )


CRD_RULES: dict[tuple[str, str], CrdRule] = {
    ("helm.cattle.io/v1", "HelmChart"): CrdRule(
        kind="HelmChart",
        namespaced=True,
        required={"spec": dict},
        spec_keys=HELMCHART_SPEC,
        extra=_helmchart,
    ),
    ("helm.cattle.io/v1", "HelmChartConfig"): CrdRule(
        kind="HelmChartConfig",
        namespaced=True,
        required={"spec": dict},
        spec_keys=frozenset({"valuesContent", "valuesSecrets", "failurePolicy"}),
    ),
    ("kueue.x-k8s.io/v1beta2", "ResourceFlavor"): CrdRule(
        kind="ResourceFlavor",
        namespaced=False,
        spec_keys=frozenset(
            {"nodeLabels", "nodeTaints", "tolerations", "topologyName"}
        ),
    ),
    ("kueue.x-k8s.io/v1beta2", "ClusterQueue"): CrdRule(
        kind="ClusterQueue",
        namespaced=False,
        required={"spec": dict, "spec.resourceGroups": list},
        spec_keys=frozenset(
            {
                "resourceGroups",
                "cohortName",
                "queueingStrategy",
                "namespaceSelector",
                "flavorFungibility",
                "preemption",
                "admissionChecksStrategy",
                "stopPolicy",
                "fairSharing",
                "admissionScope",
                "concurrentAdmissionPolicy",
            }
        ),
        extra=_cluster_queue,
    ),
    ("kueue.x-k8s.io/v1beta2", "LocalQueue"): CrdRule(
        kind="LocalQueue",
        namespaced=True,
        required={"spec": dict, "spec.clusterQueue": str},
        spec_keys=frozenset({"clusterQueue", "stopPolicy", "fairSharing"}),
    ),
    ("cert-manager.io/v1", "ClusterIssuer"): CrdRule(
        kind="ClusterIssuer",
        namespaced=False,
        required={"spec": dict},
        spec_keys=frozenset({"selfSigned", "ca", "acme", "vault", "venafi"}),
        extra=_issuer,
    ),
    ("cert-manager.io/v1", "Issuer"): CrdRule(
        kind="Issuer",
        namespaced=True,
        required={"spec": dict},
        spec_keys=frozenset({"selfSigned", "ca", "acme", "vault", "venafi"}),
        extra=_issuer,
    ),
    ("cert-manager.io/v1", "Certificate"): CrdRule(
        kind="Certificate",
        namespaced=True,
        required={"spec": dict, "spec.secretName": str, "spec.issuerRef.name": str},
        spec_keys=frozenset(
            {
                "subject",
                "literalSubject",
                "commonName",
                "duration",
                "renewBefore",
                "renewBeforePercentage",
                "dnsNames",
                "ipAddresses",
                "uris",
                "otherNames",
                "emailAddresses",
                "secretName",
                "secretTemplate",
                "keystores",
                "issuerRef",
                "isCA",
                "usages",
                "privateKey",
                "signatureAlgorithm",
                "encodeUsagesInRequest",
                "revisionHistoryLimit",
                "additionalOutputFormats",
                "nameConstraints",
            }
        ),
    ),
}
