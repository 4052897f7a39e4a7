"""Versions the whole tool agrees on, kept in one place.

KUBERNETES_VERSION is the Kubernetes minor that the default k3s package of the pinned
nixpkgs release runs (flake.lock: nixos-26.05, k3s 1.35; see docs/nixos.md). Manifests
are validated against its schemas, and the flake's `k3s-version` check fails as soon as
the pinned k3s moves to another minor, so this value cannot silently drift.
"""

KUBERNETES_VERSION = "1.35.0"
