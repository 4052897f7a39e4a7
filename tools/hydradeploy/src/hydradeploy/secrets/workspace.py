"""What every `secrets` command works on: the inventory, the secrets/ tree, the keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hydradeploy.errors import UserError
from hydradeploy.inventory import Inventory
from hydradeploy.secrets import age
from hydradeploy.secrets.keys import InvalidKey, parse_public_key
from hydradeploy.secrets.recipients import (
    Keyring,
    build_keyring,
    read_host_keys,
    render_host_keys,
    render_rules,
)
from hydradeploy.secrets.store import SecretFile, Store, write_atomically


@dataclass
class Workspace:
    inventory: Inventory
    store: Store

    def keyring(self) -> Keyring:
        return build_keyring(self.inventory, self.store)

    def header(self, f: SecretFile, data: bytes) -> list[age.Stanza]:
        try:
            return age.parse_header(data)
        except age.AgeError as exc:
            raise UserError(f"{self.store.path(f)}: {exc}") from None

    def encrypt(self, ring: Keyring, f: SecretFile, plaintext: bytes) -> bytes:
        try:
            return age.encrypt(plaintext, [r.key for r in ring.recipients(f)])
        except age.AgeError as exc:
            raise UserError(f"{self.store.path(f)}: {exc}") from None

    def decrypt(self, f: SecretFile, data: bytes, identities: list[Path]) -> bytes:
        if not identities:
            raise UserError(
                f"{self.store.path(f)}: no identity to decrypt with: pass --identity KEY "
                "(an admin key from cluster.admin_keys) or create ~/.ssh/id_ed25519"
            )
        try:
            return age.decrypt(data, identities, what=str(self.store.path(f)))
        except age.AgeError as exc:
            raise UserError(f"{exc} (is one of the identities a recipient?)") from None

    def commit(
        self, ring: Keyring, written: Mapping[SecretFile, bytes], extra: Iterable[SecretFile] = ()
    ) -> None:
        """Write the encrypted files and the regenerated rules file in one atomic step."""
        files = sorted({*self.store.files(), *written, *extra})
        out = {self.store.path(f): data for f, data in written.items()}
        out[self.store.rules_path] = render_rules(ring, files).encode()
        # Forget the keys of hosts that left the inventory.
        stored = read_host_keys(self.store.host_keys_path)
        if any(name not in self.inventory.hosts for name in stored):
            kept = {}
            for name, text in stored.items():
                try:
                    if name in self.inventory.hosts:
                        kept[name] = parse_public_key(text, ed25519_only=True)
                except InvalidKey:
                    continue  # reported by the keyring and `check`
            out[self.store.host_keys_path] = render_host_keys(kept).encode()
        write_atomically(out)
