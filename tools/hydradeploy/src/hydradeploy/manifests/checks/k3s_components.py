"""What the manifests need from k3s is not disabled in the inventory."""

from __future__ import annotations

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree

# Ports k3s itself listens on (or flannel/etcd): a ServiceLB LoadBalancer on one of them
# would never get its svclb pods scheduled (hostPort conflict).
K3S_HOST_PORTS = {6443, 10250, 2379, 2380, 8472, 51820, 51821, 5001, 6444, 10010}


@check("k3s-components")
def check_k3s_components(t: Tree) -> list[Problem]:
    """What the manifests need from k3s is not disabled in the inventory: ServiceLB for
    LoadBalancer Services (one owner per node port), metrics-server for resource HPAs,
    local-storage for local-path classes, Traefik for Ingresses."""
    disabled = set(t.inventory.cluster.disable)
    out = []
    taken: dict[tuple[int, str], str] = {}
    for d in t.of_kind("Service"):
        if d.spec.get("type") != "LoadBalancer":
            continue
        if "servicelb" in disabled:
            out.append(
                Problem(
                    str(d),
                    "k3s-components",
                    "LoadBalancer Service but the inventory disables servicelb: it stays <pending>",
                )
            )
        for port in d.spec.get("ports") or []:
            key = (int(port.get("port", 0)), str(port.get("protocol", "TCP")))
            if key[0] in K3S_HOST_PORTS:
                out.append(
                    Problem(
                        str(d),
                        "k3s-components",
                        f"port {key[0]} is a k3s host port; ServiceLB cannot bind it",
                    )
                )
            elif key in taken:
                out.append(
                    Problem(
                        str(d),
                        "k3s-components",
                        f"port {key[0]}/{key[1]} is already published by {taken[key]} (ServiceLB binds it on every node)",
                    )
                )
            else:
                taken[key] = f"Service {d.namespace}/{d.name}"
    # HelmCharts that publish LoadBalancer ports: JupyterHub's proxy on 80/443
    for d in t.of_kind("HelmChart"):
        if d.spec.get("chart") == "jupyterhub":
            proxy = t.values(d).get("proxy") or {}
            if (proxy.get("service") or {}).get("type", "LoadBalancer") == "LoadBalancer":
                https = (proxy.get("https") or {}).get("enabled", False)
                no_http = (proxy.get("service") or {}).get("disableHttpPort", False)
                ports = (80,) if not https else (443,) if no_http else (80, 443)
                for port in ports:
                    key = (port, "TCP")
                    if key in taken:
                        out.append(
                            Problem(
                                str(d),
                                "k3s-components",
                                f"JupyterHub's proxy publishes {port}/TCP, already published by {taken[key]}",
                            )
                        )
                    taken[key] = "JupyterHub proxy-public"
    if "metrics-server" in disabled:
        for d in t.of_kind("HorizontalPodAutoscaler"):
            if any(m.get("type") == "Resource" for m in d.spec.get("metrics") or []):
                out.append(
                    Problem(
                        str(d),
                        "k3s-components",
                        "resource-metric HPA but the inventory disables metrics-server",
                    )
                )
    if "local-storage" in disabled:
        for d in t.of_kind("StorageClass"):
            if d.obj.get("provisioner") == "rancher.io/local-path":
                out.append(
                    Problem(
                        str(d),
                        "k3s-components",
                        "rancher.io/local-path class but the inventory disables local-storage",
                    )
                )
    if "traefik" in disabled:
        for d in t.of_kind("Ingress"):
            out.append(
                Problem(
                    str(d),
                    "k3s-components",
                    "Ingress but the inventory disables traefik and no other ingress controller is deployed",
                )
            )
    return out
