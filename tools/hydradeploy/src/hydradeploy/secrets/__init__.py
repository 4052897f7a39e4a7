"""Secrets end to end: the k3s token and Secret manifests, age-encrypted to the hosts'
SSH host keys (agenix), never in /nix/store. `hydradeploy secrets …` is cli.py."""
