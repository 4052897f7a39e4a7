"""Volume specs: `src:dst[:opts]`, `dst`, and `--tmpfs dst[:opts]`.

A source starting with `/` is a bind mount of a host path; `.`/`~` sources are host paths
relative to a base directory (compose) ; anything else is a named volume.
"""

from __future__ import annotations

import posixpath
import re

from hydradeploy.convert.model import Mount

# Options that mean something on a single container engine but have no pod equivalent.
_IGNORED = {
    "z": "SELinux relabelling (z) is not applicable to a hostPath",
    "Z": "SELinux relabelling (Z) is not applicable to a hostPath",
    "U": "ownership change (U) is not done by the kubelet; set fsGroup or chown the data",
    "O": "overlay mount (O) has no Kubernetes equivalent; mounted directly",
    "nocopy": "nocopy: Kubernetes never copies image content into volumes",
    "consistent": "consistency option ignored",
    "cached": "consistency option ignored",
    "delegated": "consistency option ignored",
}
_PROPAGATION = {"rprivate", "private", "rshared", "shared", "rslave", "slave"}
_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


class VolumeError(ValueError):
    pass


def _check_target(target: str) -> str:
    if not target.startswith("/"):
        raise VolumeError(f"container path {target!r} must be absolute")
    return posixpath.normpath(target)


def parse_volume(
    spec: str, base_dir: str | None = None, compose: bool = False
) -> tuple[Mount, list[str]]:
    """Parse one volume string; return the mount and notes about dropped options.

    `compose`: read the options as compose-go format/volume.go ParseVolume (e70e961)
    does: `ro`/`rw` in order (the last wins), unknown options ignored ("ignore unknown
    options"), where `docker run -v` refuses them (moby volume/mounts/linux_parser.go
    linuxValidMountMode: an unknown mode, or two rw modes, is invalid; read in a stored
    copy whose commit could not be named)."""
    if not isinstance(spec, str) or not spec:
        raise VolumeError("empty volume spec")
    parts = spec.split(":")
    notes: list[str] = []
    if len(parts) == 1:
        return Mount("anonymous", _check_target(parts[0])), notes
    if len(parts) > 3:
        raise VolumeError(f"volume {spec!r} has too many ':' (want src:dst[:options])")
    source, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 else []
    if not source:
        raise VolumeError(f"volume {spec!r} has an empty source")
    read_only = False
    for opt in options:
        if opt == "ro":
            read_only = True
        elif opt == "rw" and compose:
            read_only = False
        elif opt in ("rw", ""):
            pass
        elif opt in _IGNORED:
            notes.append(f"{spec}: {_IGNORED[opt]}")
        elif opt in _PROPAGATION:
            notes.append(f"{spec}: mount propagation {opt!r} not converted (kubelet default)")
        elif compose:
            notes.append(f"{spec}: option {opt!r} is unknown; compose ignores it too")
        else:
            raise VolumeError(f"volume {spec!r} has unknown option {opt!r}")
    target = _check_target(target)
    return mount_for(source, target, read_only, base_dir), notes


def mount_for(source: str, target: str, read_only: bool, base_dir: str | None) -> Mount:
    """A bind or named-volume mount from a source as a user wrote it."""
    if source.startswith("/"):
        return Mount("bind", target, posixpath.normpath(source), read_only)
    if source.startswith((".", "~")):
        if base_dir is None:
            raise VolumeError(f"relative host path {source!r} needs an absolute path")
        if source.startswith("~"):
            raise VolumeError(f"host path {source!r} depends on the home directory; write it out")
        return Mount(
            "bind", target, posixpath.normpath(posixpath.join(base_dir, source)), read_only
        )
    if not _VOLUME_NAME.match(source):
        raise VolumeError(f"volume source {source!r} is neither an absolute path nor a volume name")
    return Mount("volume", target, source, read_only)


# tmpfs `size=`: bytes with a k, m or g suffix (powers of 1024), or a percentage of RAM
# (torvalds/linux Documentation/filesystems/tmpfs.rst, 253e5df8). A Kubernetes quantity
# reads `64m` as 64 millibytes, so the suffix must become Ki/Mi/Gi.
_TMPFS_SIZE = re.compile(r"^(\d+)([kKmMgG]?)\Z")
_TMPFS_UNIT = {"": "", "k": "Ki", "m": "Mi", "g": "Gi"}


def tmpfs_size_quantity(text: str) -> str | None:
    """The quantity of a tmpfs `size=`; None for a percentage (no pod equivalent)."""
    if text.endswith("%"):
        return None
    m = _TMPFS_SIZE.match(text)
    if not m:
        raise VolumeError(f"tmpfs size {text!r} is not a number with k, m or g")
    return f"{int(m.group(1))}{_TMPFS_UNIT[m.group(2).lower()]}"


def parse_tmpfs(spec: str) -> Mount:
    """`--tmpfs /path[:size=64m,mode=1777]` → a memory-backed mount."""
    target, _colon, opts = spec.partition(":")
    size = None
    for opt in opts.split(","):
        key, _eq, value = opt.partition("=")
        if key == "size" and value:
            size = tmpfs_size_quantity(value)
    return Mount("tmpfs", _check_target(target), size=size)
