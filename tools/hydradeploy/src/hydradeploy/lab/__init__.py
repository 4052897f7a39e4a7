"""The hydra lab: several test "hosts" on one machine, each with its own network and
mount namespaces, a real sshd, a real Nix store and system profile, and a simulated
k3s. See docs/lab.md. Importing this package is light (standard library only)."""

from hydradeploy.lab.lab import Lab, LabHost
from hydradeploy.lab.spec import FAULTS, HostSpec

__all__ = ["FAULTS", "HostSpec", "Lab", "LabHost"]
