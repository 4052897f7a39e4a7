"""hydradeploy: container conversion and cluster-aware NixOS deploys for hydra."""

__version__ = "0.1.0"
