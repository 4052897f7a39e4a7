"""SSH public keys as age recipients: parsing, validation, fingerprints, and the short
tag age writes into each recipient stanza (so recipients can be checked without any
private key)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass, field

# Key types age accepts as recipients (upstream: FiloSottile/age agessh/agessh.go @v1.1.1,
# `ParseRecipient`: "ssh-rsa", "ssh-ed25519"; an RSA key under 2048 bits is refused,
# `r.pubKey.Size() < 2048/8`). Host keys must be ed25519 (agenix decrypts with
# /etc/ssh/ssh_host_ed25519_key); admin keys may also be RSA.
AGE_SSH_TYPES = ("ssh-ed25519", "ssh-rsa")


class InvalidKey(ValueError):
    """A public key that is not a usable age recipient."""


@dataclass(frozen=True, order=True)
class PublicKey:
    kind: str  # "ssh-ed25519" or "ssh-rsa"
    blob: bytes  # the SSH wire-format key
    comment: str = field(default="", compare=False)

    @property
    def line(self) -> str:
        """The key as an age recipient / authorized_keys line, without comment: the
        comment is not part of the key and would make generated files churn."""
        return f"{self.kind} {base64.b64encode(self.blob).decode()}"

    @property
    def fingerprint(self) -> str:
        """OpenSSH's SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
        digest = hashlib.sha256(self.blob).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    @property
    def age_tag(self) -> str:
        """The tag age puts in an `-> ssh-ed25519 TAG …` / `-> ssh-rsa TAG …` stanza:
        the first 4 bytes of SHA-256 of the wire-format key, base64 without padding
        (upstream: FiloSottile/age agessh/agessh.go @v1.1.1 `sshFingerprint`:
        `sha256.Sum256(pk.Marshal())`, `format.EncodeToString(h[:4])`, raw std base64)."""
        return base64.b64encode(hashlib.sha256(self.blob).digest()[:4]).decode().rstrip("=")

    def __str__(self) -> str:
        return self.line


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise InvalidKey("truncated key data")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise InvalidKey("truncated key data")
    return blob[offset + 4 : end], end


def parse_public_key(text: str, *, ed25519_only: bool = False) -> PublicKey:
    """Parse `ssh-ed25519 AAAA… [comment]`; InvalidKey says what is wrong."""
    parts = text.strip().split(None, 2)
    if len(parts) < 2:
        raise InvalidKey("not an SSH public key (expected 'ssh-ed25519 AAAA…')")
    kind, data = parts[0], parts[1]
    allowed = ("ssh-ed25519",) if ed25519_only else AGE_SSH_TYPES
    if kind not in allowed:
        raise InvalidKey(f"key type {kind!r} cannot be used here (need {' or '.join(allowed)})")
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey(f"{kind} key data is not valid base64 (a placeholder?)") from None
    try:
        inner_kind, offset = _read_string(blob, 0)
        if inner_kind.decode(errors="replace") != kind:
            raise InvalidKey(f"key data says {inner_kind.decode(errors='replace')!r}, not {kind}")
        if kind == "ssh-ed25519":
            point, offset = _read_string(blob, offset)
            if len(point) != 32:
                raise InvalidKey("ssh-ed25519 key is not 32 bytes")
        else:
            _e, offset = _read_string(blob, offset)
            n, offset = _read_string(blob, offset)
            if len(n.lstrip(b"\0")) * 8 < 2048:
                raise InvalidKey("ssh-rsa key is shorter than 2048 bits")
        if offset != len(blob):
            raise InvalidKey("trailing bytes after the key")
    except InvalidKey as exc:
        raise InvalidKey(f"{exc} (a placeholder?)") from None
    return PublicKey(kind, blob, parts[2].strip() if len(parts) > 2 else "")
