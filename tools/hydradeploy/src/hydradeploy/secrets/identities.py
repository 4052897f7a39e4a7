"""The private keys the runner decrypts with (an admin's SSH key, or in tests a lab
host's key): found, checked readable, and matched to their public key."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hydradeploy.errors import UserError
from hydradeploy.secrets.keys import InvalidKey, PublicKey, parse_public_key
from hydradeploy.transport import local

# What agenix's CLI tries too (upstream: ryantm/agenix pkgs/agenix.sh @b027ee29d959:
# $HOME/.ssh/id_rsa and $HOME/.ssh/id_ed25519 when no --identity is given).
DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_rsa")


def resolve(given: Sequence[Path], required: bool = True) -> list[Path]:
    """The identities to use: those given (each must be a readable private key), else
    the usual ~/.ssh keys that exist."""
    if not given:
        found = [Path(p).expanduser() for p in DEFAULT_IDENTITIES]
        found = [p for p in found if os.access(p, os.R_OK)]
        if not found and required:
            raise UserError(
                "no identity to decrypt with: pass --identity KEY (an admin key from "
                "cluster.admin_keys) or create ~/.ssh/id_ed25519"
            )
        return found
    for path in given:
        try:
            head = path.read_bytes()[:64]
        except OSError as exc:
            raise UserError(f"{path}: cannot read identity: {exc.strerror}") from None
        if not head.lstrip().startswith(b"-----BEGIN"):
            raise UserError(f"{path}: not an SSH private key")
    return list(given)


def public_key(identity: Path) -> PublicKey | None:
    """The public half of a private key (None when it cannot be derived without a
    passphrase and there is no matching .pub file)."""
    try:
        res = local.run(["ssh-keygen", "-y", "-P", "", "-f", str(identity)], timeout=15)
        if res.ok:
            return parse_public_key(res.stdout)
    except (OSError, local.LocalError, InvalidKey):
        pass
    try:
        return parse_public_key(Path(f"{identity}.pub").read_text())
    except (OSError, InvalidKey):
        return None
