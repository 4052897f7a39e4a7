"""The secrets/ tree on disk, and atomic writes to it.

secrets/secrets.nix                  agenix rules (generated: who can decrypt what)
secrets/host-keys.toml               host keys collected by `secrets hostkeys` (public)
secrets/k3s-token.age                the k3s cluster token
secrets/manifests/<name>.yaml.age    Secret manifests, decrypted on servers into
                                     /var/lib/rancher/k3s/server/manifests/<name>.yaml
secrets/plain/<namespace>/<name>.yaml  plaintext Secrets waiting for `secrets import`
                                     (git-ignored, wiped by import)
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hydradeploy.errors import UserError

TOKEN = "k3s-token"
TOKEN_FILE = "k3s-token.age"
MANIFESTS = "manifests"
RULES_FILE = "secrets.nix"
HOST_KEYS_FILE = "host-keys.toml"
PLAIN_DIR = "plain"
MANIFEST_SUFFIXES = (".yaml.age", ".yml.age")  # what modules/lib/manifests.nix deploys
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True, order=True)
class SecretFile:
    """One encrypted file: `rel` is its path inside secrets/ (the agenix rule key)."""

    rel: str

    @property
    def is_token(self) -> bool:
        return self.rel == TOKEN_FILE

    @property
    def name(self) -> str:
        """What `secrets edit NAME` takes: k3s-token, or the manifest's name."""
        if self.is_token:
            return TOKEN
        base = self.rel.removeprefix(f"{MANIFESTS}/")
        return base.removesuffix(".yaml.age").removesuffix(".yml.age")


def manifest_file(name: str) -> SecretFile:
    if not NAME_RE.match(name) or len(name) > 253:
        raise UserError(f"{name!r}: not a valid secret name (lowercase letters, digits, '-', '.')")
    return SecretFile(f"{MANIFESTS}/{name}.yaml.age")


@dataclass(frozen=True)
class Store:
    root: Path  # the secrets/ directory

    def path(self, f: SecretFile) -> Path:
        return self.root / f.rel

    @property
    def rules_path(self) -> Path:
        return self.root / RULES_FILE

    @property
    def host_keys_path(self) -> Path:
        return self.root / HOST_KEYS_FILE

    @property
    def plain_dir(self) -> Path:
        return self.root / PLAIN_DIR

    def files(self) -> list[SecretFile]:
        """Every encrypted file present, the token first, then manifests by name."""
        out: list[SecretFile] = []
        if (self.root / TOKEN_FILE).is_file():
            out.append(SecretFile(TOKEN_FILE))
        mdir = self.root / MANIFESTS
        if mdir.is_dir():
            out.extend(
                SecretFile(f"{MANIFESTS}/{p.name}")
                for p in sorted(mdir.iterdir())
                if p.name.endswith(MANIFEST_SUFFIXES) and p.is_file()
            )
        return out

    def stray_files(self) -> list[Path]:
        """Files under secrets/manifests that are not `<name>.yaml.age`: agenix would
        not deploy them, and they may be plaintext put there by mistake."""
        mdir = self.root / MANIFESTS
        if not mdir.is_dir():
            return []
        return sorted(
            p
            for p in mdir.rglob("*")
            if p.is_file() and not (p.parent == mdir and p.name.endswith(MANIFEST_SUFFIXES))
        )

    def find(self, name: str) -> SecretFile:
        """The file `secrets edit NAME` means: k3s-token, a manifest name, or a path."""
        rel = name.removeprefix("secrets/")
        for f in self.files():
            if name in (f.name, f.rel) or rel == f.rel:
                return f
        known = ", ".join(f.name for f in self.files()) or "none yet"
        raise UserError(f"{self.root}: no secret named {name!r} (secrets: {known})")

    def read(self, f: SecretFile) -> bytes:
        try:
            return self.path(f).read_bytes()
        except OSError as exc:
            raise UserError(f"{self.path(f)}: cannot read: {exc.strerror}") from None


def write_atomically(files: Mapping[Path, bytes], mode: int = 0o644) -> None:
    """Write several files so that a failure leaves every old file untouched: each is
    written to a temporary file beside it first, and all are renamed at the end."""
    staged: list[tuple[Path, Path]] = []
    try:
        for target, data in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            staged.append((Path(tmp_name), target))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_name, mode)
    except OSError as exc:
        for tmp_path, _ in staged:
            tmp_path.unlink(missing_ok=True)
        raise UserError(f"{exc.filename or 'secrets'}: cannot write: {exc.strerror}") from None
    for tmp, target in staged:
        os.replace(tmp, target)
