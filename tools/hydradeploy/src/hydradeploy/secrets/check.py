"""`secrets check`: everything CI must refuse, in one pass.

1. every host and admin key is present and valid;
2. secrets/secrets.nix is what the inventory says it must be (not out of date);
3. every encrypted file is a well-formed age file whose recipients are exactly the hosts
   that need it plus the admins — read from the age header, no private key needed;
4. with identities (--identity): each file really decrypts for each of them that is a
   recipient, and holds what it should (a token, a valid Secret of the right name);
   the decrypted values then join the plaintext scan;
5. no plaintext secret in the files git would commit (scan.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydradeploy.inventory import Host
from hydradeploy.secrets import age
from hydradeploy.secrets.identities import public_key
from hydradeploy.secrets.manifests import InvalidSecret, parse_secret, secret_values
from hydradeploy.secrets.recipients import diff_recipients, previous_names, render_rules
from hydradeploy.secrets.scan import Finding, scan_repo
from hydradeploy.secrets.store import SecretFile
from hydradeploy.secrets.token import MIN_TOKEN_LENGTH
from hydradeploy.secrets.workspace import Workspace


@dataclass
class FileStatus:
    file: SecretFile
    readers: list[str]
    recipients_ok: bool | None = None
    decrypted_by: list[str] = field(default_factory=list)


@dataclass
class CheckResult:
    files: list[FileStatus] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # not failures

    @property
    def ok(self) -> bool:
        return not self.findings


def _rel(ws: Workspace, repo: Path, path: Path) -> str:
    return str(path.relative_to(repo)) if path.is_relative_to(repo) else str(path)


def run_check(
    ws: Workspace,
    repo: Path,
    identities: list[Path],
    *,
    scan: bool = True,
    on_hosts: bool = False,
    timeout: float = 30.0,
    hosts: set[str] | None = None,
) -> CheckResult:
    """`hosts`: with on_hosts, only these hosts decrypt (None: every host)."""
    result = CheckResult()
    add = result.findings.append
    ring = ws.keyring()
    store = ws.store
    if not store.files() and not store.rules_path.exists():
        # Nothing encrypted yet (a fresh clone): missing keys are the next step, not
        # a failure; the plaintext scan still runs.
        result.notes += ring.problems
    else:
        for problem in ring.problems:
            add(Finding("", 0, "keys", problem))
    rules_rel = _rel(ws, repo, store.rules_path)
    files = store.files()
    if not ring.problems:
        want = render_rules(ring, files)
        try:
            have = store.rules_path.read_text()
        except OSError:
            have = None
        if have is None:
            if files:
                add(Finding(rules_rel, 0, "rules", "missing: run `hydradeploy secrets rekey`"))
        elif have != want:
            add(
                Finding(
                    rules_rel,
                    0,
                    "rules",
                    "out of date with the inventory: run `hydradeploy secrets rekey`",
                )
            )
    for stray in store.stray_files():
        add(
            Finding(
                _rel(ws, repo, stray),
                0,
                "stray",
                "not an encrypted .yaml.age file: agenix will not deploy it",
            )
        )
    keyed = [(p, public_key(p)) for p in identities]
    old = previous_names(store)
    known_values: list[str] = []
    for f in files:
        status = FileStatus(f, ring.readers(f))
        result.files.append(status)
        rel = _rel(ws, repo, store.path(f))
        data = store.path(f).read_bytes()
        try:
            stanzas = age.parse_header(data)
        except age.AgeError as exc:
            status.recipients_ok = False
            add(Finding(rel, 0, "corrupt", str(exc)))
            continue
        diff = diff_recipients(ring, f, stanzas, old)
        status.recipients_ok = diff.ok
        if diff.missing:
            add(
                Finding(
                    rel,
                    0,
                    "recipients",
                    f"cannot be decrypted by {', '.join(diff.missing)}: run `hydradeploy secrets rekey`",
                )
            )
        if diff.extra:
            add(
                Finding(
                    rel,
                    0,
                    "recipients",
                    f"can still be decrypted by {', '.join(diff.extra)}: run `hydradeploy secrets rekey`",
                )
            )
        tags = {s.tag for s in stanzas}
        everyone = {r.key: r.name for r in ring.everyone()}
        for ident, pub in keyed:
            if pub is None or pub.age_tag not in tags:
                continue
            who = everyone.get(pub, str(ident))
            try:
                plaintext = age.decrypt(data, [ident], what=rel)
            except age.AgeError as exc:
                add(Finding(rel, 0, "decrypt", f"does not decrypt for {who}: {exc}"))
                continue
            status.decrypted_by.append(who)
            bad = _content_problem(f, plaintext)
            if bad:
                add(Finding(rel, 0, "content", bad))
            if f.is_token:
                known_values.append(plaintext.decode(errors="replace").strip())
            else:
                known_values += secret_values(plaintext)
    all_tags = set()
    for f in files:
        try:
            all_tags |= {st.tag for st in age.parse_header(store.path(f).read_bytes())}
        except age.AgeError:
            continue
    for ident, pub in keyed:
        if pub is None:
            result.notes.append(f"{ident}: cannot derive its public key (passphrase?); not used")
        elif files and pub.age_tag not in all_tags:
            result.notes.append(f"{ident}: not a recipient of any file; nothing decrypted with it")
    if on_hosts:
        _check_on_hosts(ws, repo, result, timeout, hosts)
    if scan:
        result.findings += scan_repo(repo, sorted(set(known_values)))
    result.findings = sorted(set(result.findings))
    return result


def _check_on_hosts(
    ws: Workspace, repo: Path, result: CheckResult, timeout: float, hosts: set[str] | None
) -> None:
    from hydradeploy.secrets.remote import check_on_hosts

    statuses = {s.file.rel: s for s in result.files}
    work: dict[str, tuple[Host, dict[str, bytes]]] = {}
    for status in result.files:
        data = ws.store.path(status.file).read_bytes()
        for name in status.readers:
            if hosts is not None and name not in hosts:
                continue
            work.setdefault(name, (ws.inventory.hosts[name], {}))[1][status.file.rel] = data
    for r in check_on_hosts(work, timeout):
        if r.ok:
            statuses[r.file].decrypted_by.append(r.host)
        else:
            path = _rel(ws, repo, ws.store.root / r.file)
            result.findings.append(
                Finding(path, 0, "decrypt", f"does not decrypt on {r.host}: {r.detail}")
            )


def _content_problem(f: SecretFile, plaintext: bytes) -> str | None:
    if f.is_token:
        token = plaintext.decode(errors="replace").strip()
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            return f"the k3s token is not one word of at least {MIN_TOKEN_LENGTH} characters"
        return None
    try:
        secret = parse_secret(plaintext)
    except InvalidSecret as exc:
        return f"decrypts to an invalid Secret: {exc}"
    if secret.file_name != f.name:
        return f"holds Secret {secret.namespace}/{secret.name}, but its file name says {f.name}"
    return None
