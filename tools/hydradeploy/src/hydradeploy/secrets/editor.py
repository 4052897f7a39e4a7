"""`secrets edit NAME`: decrypt into a private RAM-backed temp dir, run $EDITOR,
re-encrypt only when the content changed and is valid; the plaintext is wiped however
the editor ends."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from hydradeploy.errors import OperationFailed, UserError
from hydradeploy.secrets.manifests import InvalidSecret, parse_secret
from hydradeploy.secrets.plaintext import private_dir
from hydradeploy.secrets.token import validate_token
from hydradeploy.secrets.workspace import Workspace
from hydradeploy.transport import local


def editor_command() -> list[str]:
    raw = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        argv = shlex.split(raw)
    except ValueError:
        raise UserError(f"$EDITOR: cannot parse {raw!r}") from None
    if not argv:
        raise UserError("$EDITOR is empty")
    return argv


def edit(ws: Workspace, name: str, identities: list[Path]) -> bool:
    """Returns True when the file was re-encrypted, False when nothing changed."""
    f = ws.store.find(name)
    ring = ws.keyring()
    ring.require_complete()
    data = ws.store.read(f)
    ws.header(f, data)
    plaintext = ws.decrypt(f, data, identities)
    argv = editor_command()
    with private_dir() as tmp:
        work = tmp / (f.name if f.is_token else f"{f.name}.yaml")
        fd = os.open(work, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(plaintext)
        try:
            status = local.interactive([*argv, str(work)])
        except (OSError, local.LocalError) as exc:
            raise UserError(f"$EDITOR: cannot run {argv[0]!r}: {exc}") from None
        if status != 0:
            raise OperationFailed(
                f"{ws.store.path(f)}: the editor exited with status {status}; left unchanged"
            )
        edited = work.read_bytes()
    if edited == plaintext:
        return False
    where = f"{ws.store.path(f)} (edited)"
    if f.is_token:
        edited = validate_token(edited.decode(errors="replace"), where).encode()
    else:
        try:
            secret = parse_secret(edited)
        except InvalidSecret as exc:
            raise UserError(f"{where}: {exc}; left unchanged") from None
        if secret.file_name != f.name:
            raise UserError(
                f"{where}: the Secret is now {secret.namespace}/{secret.name}, but this file "
                f"holds {f.name}; rename by importing a new manifest; left unchanged"
            )
    ws.commit(ring, {f: ws.encrypt(ring, f, edited)})
    return True
