"""No secrets under k8s/."""

from __future__ import annotations

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree
from hydradeploy.secret_names import is_secret


@check("no-secrets")
def check_no_secrets(t: Tree) -> list[Problem]:
    """No Secret objects and no secret-looking literal env values under k8s/: Secrets
    come from agenix (docs/secrets.md)."""
    out = []
    for d in t.docs:
        if d.kind == "Secret":
            out.append(
                Problem(
                    str(d),
                    "no-secrets",
                    "Secret objects never live under k8s/; deliver them with agenix",
                )
            )
    for pod in t.pods:
        for c in pod.containers() + list(pod.spec.get("initContainers") or []):
            for e in c.get("env") or []:
                # the converter's and `secrets check`'s rule (hydradeploy.secret_names)
                if "value" in e and is_secret(str(e.get("name", "")), str(e["value"])):
                    out.append(
                        Problem(
                            str(pod.doc),
                            "no-secrets",
                            f"{pod.owner}: env {e['name']} has a literal value; use secretKeyRef",
                        )
                    )
    return out
