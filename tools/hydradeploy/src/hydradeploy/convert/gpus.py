"""GPU requests from the ways containers get GPUs on a single host.

NVIDIA: CDI devices (`nvidia.com/gpu=all`, `nvidia.com/gpu=0`), `--gpus all|N|device=…`,
raw `/dev/nvidia*` nodes, compose device reservations, `runtime: nvidia`.
AMD (ROCm): `/dev/kfd` (the compute interface), or `/dev/dri` with a ROCm image.
`/dev/dri` alone with another image is video acceleration (Plex, Jellyfin): that stays
a device and the report says it needs a device plugin.
"""

from __future__ import annotations

import re

from hydradeploy.convert.model import Container, Device, GpuRequest

_NV_NODE = re.compile(r"^/dev/nvidia(\d+)\Z")
_NV_SUPPORT = re.compile(r"^/dev/nvidia(ctl|-uvm|-uvm-tools|-modeset|-caps.*)\Z")
_RENDER_NODE = re.compile(r"^/dev/dri/renderD\d+\Z")


class GpuError(ValueError):
    pass


def parse_gpus_flag(value: str) -> int | None:
    """`--gpus` value → count (None: all). Forms: all, 2, device=0,1, count=2,capabilities=…"""
    v = value.strip().strip("'\"")
    if v == "all":
        return None
    if v.isdigit():
        if int(v) < 1:
            raise GpuError(f"--gpus {value!r} asks for no GPU")
        return int(v)
    count: int | None = None
    devices = re.search(r"device=([^=]*?)(?:,[a-z_]+=|$)", v)
    if devices:
        return len([d for d in devices.group(1).split(",") if d])
    m = re.search(r"count=(all|\d+)", v)
    if m:
        count = None if m.group(1) == "all" else int(m.group(1))
        return count
    if v.startswith("capabilities="):
        return None
    raise GpuError(f"--gpus {value!r} is not all, a number, device=… or count=…")


def is_rocm_image(image: str) -> bool:
    return "rocm" in image.lower()


def extract_gpus(c: Container) -> None:
    """Turn GPU device entries of `c` into GpuRequests (removing those devices)."""
    nv_all = False
    nv_ids: set[str] = set()
    nv_support = False
    has_kfd = False
    render_nodes: set[str] = set()
    dri_dir = False
    rest: list[Device] = []
    for dev in c.devices:
        path = dev.host_path
        if path.startswith("nvidia.com/gpu="):
            ident = path.split("=", 1)[1]
            if ident == "all":
                nv_all = True
            else:
                nv_ids.add(ident)
        elif path.startswith("amd.com/gpu="):
            has_kfd = True
            if path.split("=", 1)[1] != "all":
                render_nodes.add(path)
        elif m := _NV_NODE.match(path):
            nv_ids.add(m.group(1))
        elif _NV_SUPPORT.match(path):
            nv_support = True
        elif path == "/dev/kfd":
            has_kfd = True
        elif path in ("/dev/dri", "/dev/dri/"):
            dri_dir = True
            rest.append(dev)
        elif _RENDER_NODE.match(path) or path.startswith("/dev/dri/card"):
            if _RENDER_NODE.match(path):
                render_nodes.add(path)
            rest.append(dev)
        else:
            rest.append(dev)
    if nv_all or nv_ids or nv_support:
        count = None if nv_all or not nv_ids else len(nv_ids)
        c.gpus.append(GpuRequest("nvidia", count, "devices"))
    amd = has_kfd or ((dri_dir or render_nodes) and is_rocm_image(c.image))
    if amd:
        # the AMD device plugin hands out /dev/kfd and the render node together
        rest = [d for d in rest if not d.host_path.startswith("/dev/dri")]
        count = len(render_nodes) if render_nodes and not dri_dir else None
        c.gpus.append(GpuRequest("amd", count, "devices /dev/kfd, /dev/dri"))
    c.devices = rest
    merge_gpu_requests(c)


def merge_gpu_requests(c: Container) -> None:
    """One request per vendor: `all` wins, otherwise the largest count."""
    merged: dict[str, GpuRequest] = {}
    for req in c.gpus:
        prev = merged.get(req.vendor)
        if prev is None:
            merged[req.vendor] = req
        elif prev.count is None or req.count is None:
            merged[req.vendor] = GpuRequest(req.vendor, None, f"{prev.origin}, {req.origin}")
        else:
            merged[req.vendor] = GpuRequest(
                req.vendor, max(prev.count, req.count), f"{prev.origin}, {req.origin}"
            )
    c.gpus = [merged[v] for v in sorted(merged)]
