"""`secrets init`: a fresh k3s cluster token, encrypted to every cluster host."""

from __future__ import annotations

import secrets as random_source

from hydradeploy.errors import UserError
from hydradeploy.secrets.store import TOKEN_FILE, SecretFile
from hydradeploy.secrets.workspace import Workspace

TOKEN_BYTES = 32  # 256 bits, as `openssl rand -hex 32`
MIN_TOKEN_LENGTH = 16


def validate_token(token: str, where: str) -> str:
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise UserError(
            f"{where}: a k3s token must be one word of at least {MIN_TOKEN_LENGTH} characters"
        )
    return token


def init_token(ws: Workspace, *, force: bool, given: str | None = None) -> str:
    """Generate (or take) the token, encrypt it, write it with the rules; returns it."""
    f = SecretFile(TOKEN_FILE)
    path = ws.store.path(f)
    if path.exists() and not force:
        raise UserError(
            f"{path}: exists already; --force replaces the token (servers that already "
            "hold cluster data keep the old one: rotate with `k3s token rotate` first)"
        )
    ring = ws.keyring()
    ring.require_complete()
    token = (
        validate_token(given, "token")
        if given is not None
        else random_source.token_hex(TOKEN_BYTES)
    )
    # No trailing newline: the file is used verbatim as services.k3s.tokenFile.
    ws.commit(ring, {f: ws.encrypt(ring, f, token.encode())})
    return token
