"""`secrets rekey`: re-encrypt every file whose recipients no longer match the rules
(hosts added or removed, keys changed). Files already right are left byte-identical, so
git shows only real changes. Plaintext stays in memory (pipes), never on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hydradeploy.secrets.recipients import RecipientDiff, diff_recipients, previous_names
from hydradeploy.secrets.store import SecretFile
from hydradeploy.secrets.workspace import Workspace


@dataclass(frozen=True)
class Rekeyed:
    file: SecretFile
    changed: bool
    diff: RecipientDiff


def rekey(ws: Workspace, identities: list[Path], *, force: bool = False) -> list[Rekeyed]:
    ring = ws.keyring()
    ring.require_complete()
    old = previous_names(ws.store)
    results: list[Rekeyed] = []
    written: dict[SecretFile, bytes] = {}
    # Everything is decrypted and re-encrypted before anything is written: one
    # unreadable file leaves the whole tree as it was.
    for f in ws.store.files():
        data = ws.store.read(f)
        diff = diff_recipients(ring, f, ws.header(f, data), old)
        if diff.ok and not force:
            results.append(Rekeyed(f, False, diff))
            continue
        plaintext = ws.decrypt(f, data, identities)
        written[f] = ws.encrypt(ring, f, plaintext)
        results.append(Rekeyed(f, True, diff))
    ws.commit(ring, written)
    return results
