"""Versions the whole tool agrees on, kept in one place.

KUBERNETES_VERSION is the Kubernetes minor that the k3s of the pinned nixpkgs release
runs (see flake.lock and docs/nixos.md); manifests are validated against its schemas.
"""

KUBERNETES_VERSION = "1.34.0"
