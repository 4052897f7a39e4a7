"""`secrets import`: plaintext Secret manifests (from the converter, in secrets/plain/,
or given as files) become secrets/manifests/<namespace>-<name>.yaml.age; the plaintext
is wiped once the encrypted files are safely written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hydradeploy.errors import UserError
from hydradeploy.secrets.manifests import InvalidSecret, parse_secret
from hydradeploy.secrets.plaintext import wipe_file
from hydradeploy.secrets.store import SecretFile, manifest_file
from hydradeploy.secrets.workspace import Workspace


@dataclass(frozen=True)
class Imported:
    source: Path
    target: SecretFile
    replaced: bool


def pending(ws: Workspace) -> list[Path]:
    """Plaintext manifests waiting in secrets/plain/<namespace>/<name>.yaml."""
    plain = ws.store.plain_dir
    if not plain.is_dir():
        return []
    return sorted(p for p in plain.glob("*/*") if p.is_file() and p.suffix in (".yaml", ".yml"))


def import_manifests(ws: Workspace, paths: list[Path], *, keep: bool = False) -> list[Imported]:
    plain = ws.store.plain_dir.resolve()
    sources = paths or pending(ws)
    if not sources:
        return []  # nothing waiting: not an error (e.g. right after a conversion without secrets)
    staged: dict[SecretFile, tuple[Path, bytes]] = {}
    for path in sources:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UserError(f"{path}: cannot read: {exc.strerror}") from None
        # In secrets/plain/<namespace>/, the directory names the namespace.
        in_plain = path.resolve().parent.parent == plain
        try:
            secret = parse_secret(data, path.parent.name if in_plain else None)
        except InvalidSecret as exc:
            raise UserError(f"{path}: {exc}") from None
        target = manifest_file(secret.file_name)
        if target in staged:
            raise UserError(
                f"{path}: Secret {secret.namespace}/{secret.name} is also in {staged[target][0]}"
            )
        staged[target] = (path, data)
    ring = ws.keyring()
    ring.require_complete()
    existing = set(ws.store.files())
    encrypted = {f: ws.encrypt(ring, f, data) for f, (_p, data) in staged.items()}
    ws.commit(ring, encrypted)
    if not keep:
        for path, _data in staged.values():
            wipe_file(path)
            parent = path.parent
            if parent.resolve().parent == plain and not any(parent.iterdir()):
                parent.rmdir()
    return [Imported(p, f, f in existing) for f, (p, _d) in sorted(staged.items())]
