"""GPU requests from the ways containers get GPUs on a single host.

NVIDIA: CDI devices (`nvidia.com/gpu=all`, `nvidia.com/gpu=0`), `--gpus all|N|device=…`,
raw `/dev/nvidia*` nodes, compose device reservations, `runtime: nvidia`.
AMD (ROCm): `/dev/kfd` (the compute interface), or `/dev/dri` with a ROCm image.
`/dev/dri` alone with another image is video acceleration (Plex, Jellyfin): that stays
a device and the report says it needs a device plugin.
"""

from __future__ import annotations

import csv
import re

from hydradeploy.convert.model import Container, Device, GpuRequest

_NV_NODE = re.compile(r"^/dev/nvidia(\d+)\Z")
_NV_SUPPORT = re.compile(r"^/dev/nvidia(ctl|-uvm|-uvm-tools|-modeset|-caps.*)\Z")
_RENDER_NODE = re.compile(r"^/dev/dri/renderD\d+\Z")


class GpuError(ValueError):
    pass


def parse_gpus_flag(value: str, podman: bool = False) -> int | None:
    """`--gpus` value → count (None: all).

    docker (docker/cli opts/gpus.go GpuOpts.Set, commit 29e34aba): one CSV record of
    `all` or a number (the count), `count=N|all`, `device=ID,…` (quote it: the CSV
    comma), `capabilities=…`, `driver=…`, `options=…`, each key once; without a count
    or devices the count is 1.
    podman (libpod/util.go gpusToCDIDevices, c6580b4a): a comma-separated list whose
    entries become CDI names `<vendor>/gpu=<entry>`: `all`, or device IDs — so
    `--gpus 2` is the GPU with index 2, one GPU."""
    try:
        fields = next(csv.reader([value.strip()]))
    except (csv.Error, StopIteration):
        raise GpuError(f"--gpus {value!r} is not a comma-separated list") from None
    if podman:
        entries = [f.strip() for f in fields if f.strip()]
        if not entries:
            raise GpuError(f"--gpus {value!r} names no GPU")
        if any("=" in e for e in entries):
            # `nvidia.com/gpu=device=0` is no CDI device: podman fails to start it
            raise GpuError(
                f"--gpus {value!r}: podman takes GPU IDs or `all` (--gpus=0,1), not docker's key=value form"
            )
        return None if "all" in entries else len(entries)
    seen: set[str] = set()
    count: int | None = None
    ids: list[str] | None = None
    for field in fields:
        key, eq, val = field.partition("=")
        if key in seen:
            raise GpuError(f"--gpus {value!r}: gpu request key {key!r} can be specified only once")
        seen.add(key)
        if not eq:
            seen.add("count")
            count = _gpu_count(key, value)
        elif key == "count":
            count = _gpu_count(val, value)
        elif key == "device":
            ids = val.split(",")
        elif key not in ("capabilities", "driver", "options"):
            raise GpuError(f"--gpus {value!r}: unexpected key {key!r}")
    if ids is not None:
        if "count" in seen:
            # moby daemon/nvidia_linux.go: "cannot set both Count and DeviceIDs"
            raise GpuError(f"--gpus {value!r} sets both a count and devices")
        return len([d for d in ids if d])
    if "count" not in seen:
        return 1
    if count == 0:
        raise GpuError(f"--gpus {value!r} asks for no GPU")
    return count


def _gpu_count(text: str, value: str) -> int | None:
    if text == "all":
        return None  # opts/gpus.go parseCount: -1, every GPU
    if not text.isdigit():
        raise GpuError(f'--gpus {value!r}: count {text!r} must be either "all" or an integer')
    return int(text)


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
        # CDI names `<vendor>/gpu=<id|all>` with the vendors nvidia.com and amd.com, as
        # podman builds them for --gpus (libpod/util.go gpusToCDIDevices, c6580b4a)
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
        # (ROCm/k8s-device-plugin cmd/k8s-device-plugin/main.go Allocate, 06c7abd6)
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
