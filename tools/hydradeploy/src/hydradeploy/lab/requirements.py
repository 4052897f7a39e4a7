"""What the lab needs from the machine; one line saying what is missing."""

from __future__ import annotations

import os
import shutil

TOOLS = ("ip", "nsenter", "unshare", "mount", "ssh-keygen", "nix-store", "nix-env", "tc",
         "systemd-nspawn", "debootstrap")  # fmt: skip


def missing() -> str | None:
    """None when the lab can run here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "the lab needs root (it creates network and mount namespaces); run it as root"
    absent = [t for t in TOOLS if shutil.which(t) is None]
    if absent:
        return (
            f"the lab needs {', '.join(absent)} (Debian: apt-get install iproute2 openssh-client "
            "nix-bin util-linux systemd-container debootstrap)"
        )
    return None
