"""Keys, known_hosts and the sshd configuration of lab hosts (Debian's OpenSSH)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hydradeploy.errors import OperationFailed

# As on NixOS: the system profile's binaries come first.
SESSION_PATH = (
    "/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)


def keygen(path: Path, comment: str) -> str:
    """An ed25519 key pair at PATH (private) and PATH.pub; returns the public key line."""
    proc = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise OperationFailed(f"lab: ssh-keygen {path}: {proc.stderr.strip()}")
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def sshd_config() -> str:
    """Every keyword is in openssh-portable servconf.c's `keywords` table @V_9_2_P1 (the
    sshd Debian 12 ships). Like NixOS's sshd: keys from /etc/ssh/authorized_keys.d/%u,
    root by key only, the ed25519 host key at /etc/ssh/ssh_host_ed25519_key (upstream:
    nixpkgs nixos/modules/services/networking/ssh/sshd.nix, stored copy @00976b194fe3,
    older than the pin: `authorizedKeysFiles`, `permitRootLogin` default
    "prohibit-password", `hostKeys`)."""
    return f"""# hydra lab host sshd (Debian OpenSSH inside the host's namespaces)
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile /etc/ssh/authorized_keys.d/%u
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
SetEnv PATH={SESSION_PATH}
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def write_host_ssh(ssh_dir: Path, host: str, client_pub: str) -> str:
    """Fill the directory mounted at the host's /etc/ssh; returns its public host key."""
    ssh_dir.mkdir(parents=True, exist_ok=True)
    host_key = keygen(ssh_dir / "ssh_host_ed25519_key", f"root@{host}")
    (ssh_dir / "sshd_config").write_text(sshd_config())
    auth = ssh_dir / "authorized_keys.d"
    auth.mkdir(exist_ok=True)
    (auth / "root").write_text(client_pub + " hydra-lab\n")
    return host_key


def known_hosts_lines(hosts: dict[str, tuple[str, str]]) -> str:
    """name -> (address, public host key) as known_hosts lines (name and address)."""
    return "".join(f"{name},{addr} {key}\n" for name, (addr, key) in sorted(hosts.items()))
