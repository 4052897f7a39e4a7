"""Node labels that no inventory declares but the platform's charts put on nodes:
node-feature-discovery (NFD), NVIDIA GPU feature discovery (GFD) and the AMD labeller,
modelled from the charts' values (ours coalesced with the chart defaults when known).

What a node gets:
- exact labels: NFD's PCI labels for the inventory's GPUs, computed from the NFD worker
  config `sources.pci.deviceClassWhitelist` / `deviceLabelFields` (label
  `feature.node.kubernetes.io/pci-<fields joined by _>.present: "true"`, as the chart
  defaults' own selectors spell them: nvidia-device-plugin 0.20.0 values.yaml
  `pci-10de.present`, amd-gpu 0.21.0 values.yaml `pci-0300_1002.present`);
- label prefixes whose keys and values are not modelled (any key under them may exist):
  `nvidia.com/` on NVIDIA nodes when GFD runs, `amd.com/` on AMD nodes when the AMD
  labeller runs, and NFD's other features (`feature.node.kubernetes.io/cpu-…`,
  `kernel-…`) on every node NFD runs on. PCI labels are never wildcarded when the NFD
  config is known: a `pci-…` selector the config cannot produce matches no node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hydradeploy.manifests.cluster import Node
from hydradeploy.manifests.load import Doc

NFD_PREFIX = "feature.node.kubernetes.io/"
NFD_PCI_PREFIX = NFD_PREFIX + "pci-"

# PCI vendor IDs of the GPU vendors the inventory knows. 10de: nvidia-device-plugin
# 0.20.0 values.yaml ("10de is the NVIDIA PCI vendor ID"); 1002: amd-gpu 0.21.0
# values.yaml, whose default selector pci-0300_1002 is class 0300 + vendor 1002.
PCI_VENDOR_IDS = {"nvidia": "10de", "amd": "1002"}
# PCI base class of display controllers (the "03" of NFD's deviceClassWhitelist in
# nvidia-device-plugin 0.20.0 values.yaml `nfd.worker.config.sources.pci`).
DISPLAY_CLASS = "03"


@dataclass(frozen=True)
class Discovered:
    """What the platform's discovery charts will label, per node name."""

    exact: dict[str, dict[str, str]] = field(default_factory=dict)
    prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _get(values: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(values, dict):
            return None
        values = values.get(part)
    return values


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == str(v) for k, v in selector.items())


def discover(
    nodes: Iterable[Node], charts: Iterable[Doc], values_of: Callable[[Doc], dict[str, Any]]
) -> Discovered:
    nodes = list(nodes)
    out = Discovered()
    for d in charts:
        chart = str(d.spec.get("chart", "")).rsplit("/", 1)[-1]
        values = values_of(d)
        if chart == "nvidia-device-plugin":
            plugin_selector = values.get("nodeSelector") or {}
            if _get(values, "nfd.enabled") is not False and isinstance(values.get("nfd"), dict):
                _nfd(nodes, values["nfd"], out)
            if _get(values, "gfd.enabled") is True:
                for n in nodes:
                    if n.gpus.get("nvidia.com/gpu") and _selects(plugin_selector, n.labels):
                        _add_prefix(out, n.name, "nvidia.com/")
        elif chart == "amd-gpu":
            selector = (
                (values.get("node_selector") or {}) if values.get("node_selector_enabled") else {}
            )
            if _get(values, "labeller.enabled") is True:
                for n in nodes:
                    if n.gpus.get("amd.com/gpu") and _selects(
                        {k: v for k, v in selector.items() if not k.startswith(NFD_PREFIX)},
                        n.labels,
                    ):
                        _add_prefix(out, n.name, "amd.com/")
            if _get(values, "nfd.enabled") is True and isinstance(values.get("nfd"), dict):
                _nfd(nodes, values["nfd"], out)
        elif chart == "node-feature-discovery":
            _nfd(nodes, values, out)
    return out


def _add_prefix(out: Discovered, node: str, prefix: str) -> None:
    if prefix not in out.prefixes.get(node, ()):
        out.prefixes[node] = (*out.prefixes.get(node, ()), prefix)


def _nfd(nodes: list[Node], nfd: Mapping[str, Any], out: Discovered) -> None:
    """The labels NFD's worker produces on the nodes it runs on. Where the worker runs is
    its own nodeSelector; its tolerations are checked by the daemonset-taints check."""
    worker = nfd.get("worker") or {}
    if worker.get("enable", True) is False:
        return
    pci = _get(worker, "config.sources.pci") or {}
    classes = pci.get("deviceClassWhitelist")
    fields = pci.get("deviceLabelFields")
    for n in nodes:
        if not _selects(worker.get("nodeSelector") or {}, n.labels):
            continue
        _add_prefix(out, n.name, NFD_PREFIX + "!pci")  # NFD's non-PCI features
        if fields is None or classes is None:
            _add_prefix(out, n.name, NFD_PCI_PREFIX)  # config unknown: not modelled
            continue
        if not any(str(c)[:2] == DISPLAY_CLASS for c in classes):
            continue
        for vendor, vid in PCI_VENDOR_IDS.items():
            if not n.gpus.get(f"{vendor}.com/gpu"):
                continue
            if list(fields) == ["vendor"]:
                out.exact.setdefault(n.name, {})[f"{NFD_PCI_PREFIX}{vid}.present"] = "true"
            else:
                # class/device/subsystem ids are not in the inventory: not modelled
                _add_prefix(out, n.name, NFD_PCI_PREFIX)


def may_carry(prefixes: Iterable[str], key: str) -> bool:
    """Whether a node with these discovered prefixes may carry label `key`."""
    for p in prefixes:
        if p.endswith("!pci"):
            base = p[: -len("!pci")]
            if key.startswith(base) and not key.startswith(NFD_PCI_PREFIX):
                return True
        elif key.startswith(p):
            return True
    return False
