"""Versions the whole tool agrees on, kept in one place.

KUBERNETES_VERSION is the Kubernetes minor that the default k3s package of the pinned
nixpkgs release runs (flake.lock: nixos-26.05, k3s 1.35; see docs/nixos.md). Manifests
are validated against its schemas, and the flake's `k3s-version` check fails as soon as
the pinned k3s moves to another minor, so this value cannot silently drift.

K3S_SUPPORTED is the k3s range the flake, the manifests and the lab are written for,
stated once here: [first, end). Source: nixos-26.05's `pkgs.k3s` is the k3s_1_35 line
(nixpkgs pkgs/applications/networking/cluster/k3s/1_35/versions.nix: v1.35.6+k3s1 at
nixpkgs 2680ad0cfc17, v1.35.7+k3s1 later on the branch; ../shared/upstream/SOURCES.md),
and a release branch keeps its k3s minor. Moving to nixos-26.11 (k3s 1.36) is written
up in docs/upstream-options.md, "Versions".

HELM_CONTROLLER_VERSIONS are the helm-controller releases that k3s range bundles (k3s
go.mod): v0.17.1 up to v1.35.6+k3s1; v1.35.7+k3s1 was not verified and is v0.17.6 or
later, so the newest CRD collected (v0.17.7) stands for it (SOURCES.md, "Which
helm-controller k3s bundles"). A HelmChart must be valid for every one of them.
"""

KUBERNETES_VERSION = "1.35.0"
K3S_SUPPORTED = ("1.35.0", "1.36.0")
HELM_CONTROLLER_VERSIONS = ("v0.17.1", "v0.17.7")
