"""Thin typed wrappers around the `age` CLI (the same tool and format agenix uses).

Plaintext only ever travels through pipes: it is given to `age -e` on stdin and read
from `age -d` on stdout, so encrypting, decrypting and re-keying never write it to disk.
Every call has a timeout; every failure becomes an AgeError that says what went wrong.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hydradeploy.secrets.keys import PublicKey
from hydradeploy.transport import local

AGE_TIMEOUT = 60.0
# upstream: FiloSottile/age @v1.1.1 (Debian 12's age; the same in v1.3.1):
# internal/format/format.go (`intro = "age-encryption.org/v1\n"`, stanza lines start "->",
# the MAC line "---", stanza bodies in lines of ColumnsPerLine = 64 base64 columns ended by
# a shorter, possibly empty, line); armor/armor.go (Header, Footer).
INTRO = b"age-encryption.org/v1\n"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"


class AgeError(Exception):
    """age failed: bad ciphertext, no matching identity, unreadable key, missing age."""


@dataclass(frozen=True)
class Stanza:
    kind: str  # "ssh-ed25519", "ssh-rsa", "X25519", …
    args: tuple[str, ...]

    @property
    def tag(self) -> str | None:
        """The recipient tag of an SSH stanza (see keys.PublicKey.age_tag)."""
        return self.args[0] if self.kind in ("ssh-ed25519", "ssh-rsa") and self.args else None


def age_binary() -> str:
    found = shutil.which("age")
    if found is None:
        raise AgeError("the age command is not installed (Debian: apt install age)")
    return found


def _run(argv: Sequence[str], data: bytes, what: str) -> bytes:
    try:
        rc, out, err = local.run_bytes(
            [age_binary(), *argv], input=data, timeout=AGE_TIMEOUT, env={"LC_ALL": "C"}
        )
    except local.LocalError:
        raise AgeError(f"{what}: age did not finish within {AGE_TIMEOUT:.0f} s") from None
    if rc != 0:
        lines = [
            ln.removeprefix("age: error: ").strip()
            for ln in err.decode(errors="replace").splitlines()
            if ln.strip() and "report unexpected" not in ln
        ]
        raise AgeError(f"{what}: {'; '.join(lines) or f'age exited with {rc}'}")
    return out


def encrypt(plaintext: bytes, recipients: Iterable[PublicKey]) -> bytes:
    """Encrypt to every recipient (binary age format, as agenix stores it)."""
    keys = sorted(set(recipients))
    if not keys:
        raise AgeError("refusing to encrypt to no recipients")
    argv: list[str] = []
    for key in keys:
        argv += ["-r", key.line]
    return _run(argv, plaintext, "encrypt")


def decrypt(ciphertext: bytes, identities: Sequence[Path], what: str = "decrypt") -> bytes:
    """Decrypt with the first identity (OpenSSH private key) that is a recipient."""
    if not identities:
        raise AgeError(f"{what}: no identity given to decrypt with")
    for ident in identities:
        if not os.access(ident, os.R_OK):
            raise AgeError(f"{ident}: identity file is missing or unreadable")
    argv: list[str] = ["-d"]
    for ident in identities:
        argv += ["-i", str(ident)]
    return _run(argv, ciphertext, what)


def parse_header(data: bytes) -> list[Stanza]:
    """The recipient stanzas of an age file, read without any key. Raises AgeError when
    the data is not an age file (corrupt, truncated, or plaintext by mistake)."""
    if data.lstrip().startswith(ARMOR_BEGIN):
        body = data.strip()
        if not body.endswith(ARMOR_END):
            raise AgeError("armored age file without its END line")
        inner = body[len(ARMOR_BEGIN) : -len(ARMOR_END)]
        try:
            data = base64.b64decode(b"".join(inner.split()), validate=True)
        except (binascii.Error, ValueError):
            raise AgeError("armored age file with invalid base64") from None
    if not data.startswith(INTRO):
        raise AgeError("not an age file (no age-encryption.org/v1 header)")
    stanzas: list[Stanza] = []
    lines = data[len(INTRO) :].split(b"\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"--- "):
            if not stanzas:
                raise AgeError("age header has no recipients")
            return stanzas
        if not line.startswith(b"-> "):
            raise AgeError("malformed age header")
        words = line[3:].decode("ascii", errors="replace").split(" ")
        stanzas.append(Stanza(words[0], tuple(words[1:])))
        # The stanza body: base64 lines of 64 columns, ended by a shorter one.
        i += 1
        while i < len(lines) and len(lines[i]) == 64:
            i += 1
        i += 1
    raise AgeError("truncated age header (no MAC line)")
