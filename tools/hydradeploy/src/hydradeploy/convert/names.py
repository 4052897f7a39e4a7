"""Kubernetes names from container names: DNS-1035 labels (Services need a leading
letter), short enough for the suffixes we append, collisions resolved deterministically."""

from __future__ import annotations

import functools
import hashlib
import re

MAX_BASE = 47  # leaves room for suffixes such as "-nodeport" and "-env-files" within 63
_INVALID = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


# the same names come back for every object of a container (and mount targets such as
# /config for many containers): each is worked out once per process
@functools.lru_cache(maxsize=16384)
def sanitize(name: str) -> str:
    """`My_App.1` → `my-app-1`; a leading digit gets `c-`; long names keep a hash tail."""
    s = _DASHES.sub("-", _INVALID.sub("-", name.lower())).strip("-")
    if not s:
        s = "container"
    if not s[0].isalpha():
        s = f"c-{s}"
    if len(s) > MAX_BASE:
        digest = hashlib.sha256(name.encode()).hexdigest()[:6]
        s = f"{s[: MAX_BASE - 7].rstrip('-')}-{digest}"
    return s


def assign_names(originals: list[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Map each original name to a unique sanitized one.

    Names that are already valid keep themselves; the others, in sorted order, take the
    first free of `base`, `base-2`, `base-3`… Returns the mapping and the renamed pairs.
    """
    result: dict[str, str] = {}
    taken: set[str] = set()
    for original in sorted(originals):
        if sanitize(original) == original:
            result[original] = original
            taken.add(original)
    renamed: list[tuple[str, str]] = []
    for original in sorted(originals):
        if original in result:
            continue
        base = sanitize(original)
        candidate, n = base, 2
        while candidate in taken:
            candidate = f"{base}-{n}"
            n += 1
        result[original] = candidate
        taken.add(candidate)
        renamed.append((original, candidate))
    return result, renamed
