"""Find plaintext secrets in files that will be committed.

What counts (each finding names file and line, never the secret itself):
- a Kubernetes Secret with data/stringData (it belongs in secrets/manifests/*.age),
- a high-entropy value assigned to a TOKEN/PASSWORD/SECRET/KEY-like name
  (YAML/JSON keys, `- name: X / value: Y` env entries, NAME=value and NAME = "value"),
- a private key block (OpenSSH, PEM, PGP) or an age secret key,
- a k3s token (K10<hash>::server:<password> or K10<hash>::<id>.<secret>), a URL with a
  literal password,
- any value known to be secret (decrypted from secrets/*.age, or given by a test).
A line containing `hydra-secrets: allow` is skipped (documented false positives).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hydradeploy import secret_names
from hydradeploy.transport import local

SCAN_ROOTS = ("k8s", "hosts", "modules", "secrets", "flake.nix")
ALLOW_MARK = "hydra-secrets: allow"
MAX_BYTES = 4 * 1024 * 1024

PRIVATE_KEY_RE = re.compile(
    r"-----BEGIN ((RSA|DSA|EC|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY( BLOCK)?-----"
    r"|AGE-SECRET-KEY-1[0-9A-Z]{20,}"
)
# upstream: k3s pkg/clientaccess/token.go @0566d4571ef8 (`Info.String`, `FormatTokenBytes`):
# "K10" + hex SHA-256 of the cluster CA + "::" + creds, creds being "user:password" or a
# kubeadm bootstrap token "id.secret" (`BootstrapTokenString`, no colon).
K3S_TOKEN_RE = re.compile(r"K10[0-9a-f]{32,}::[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)?")
ASSIGN_RE = re.compile(
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)["']?\s*(?::|=)\s*(?P<q>["']?)(?P<value>[^\s"',;}\]#]+)"""
)
# scheme://user:password@host with a literal password (not ${VAR}, $VAR or <placeholder>).
URL_CREDENTIALS_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?P<pw>[^@\s/'\"]+)@")
ATTR_PATH_RE = re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)+$")


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_secret(value: str) -> bool:
    """A value random enough to be a password or token, and not a reference to one.
    Only asked about values under secret-like names, so the bar is moderate: at least
    12 characters, letters with digits or mixed case, and >= 3 bits per character — or
    >= 2.5 from 16 characters on: a sample of n characters shows at most log2(n) bits per
    character, and 1 random 20-character hex token in ~1,500 falls under 3.0 (found by
    tests/secrets/test_secrets_properties.py), while placeholders ("xxxxxxxx…",
    "changeme") stay far below 2.5."""
    if len(value) < 12 or value.startswith(("$", "/", "./", "~", "<", "{{", "ssh-", "age1")):
        return False
    if "${" in value or "://" in value or ATTR_PATH_RE.match(value.lstrip("!(")):
        return False
    if re.fullmatch(r"[0-9a-fA-F]{16,}", value):
        return True
    letters = re.search(r"[A-Za-z]", value) is not None
    digits = re.search(r"[0-9]", value) is not None
    mixed_case = re.search(r"[a-z]", value) is not None and re.search(r"[A-Z]", value) is not None
    bar = 2.5 if len(value) >= 16 else 3.0
    return ((letters and digits) or mixed_case) and entropy(value) >= bar


def is_secret_name(name: str) -> bool:
    """The rule the converter and k8s-check use too (hydradeploy.secret_names), applied
    to the last part of a Nix attribute path."""
    return secret_names.is_secret_name(name.rsplit(".", 1)[-1])


def _redact(value: str) -> str:
    return value[:3] + "…" if len(value) > 8 else "…"


def _line_of(text: str, needle: str) -> int:
    idx = text.find(needle)
    return text.count("\n", 0, idx) + 1 if idx >= 0 else 1


def _walk(node: Any, text: str, rel: str) -> Iterator[Finding]:
    if isinstance(node, dict):
        if node.get("kind") == "Secret" and (node.get("data") or node.get("stringData")):
            name = (node.get("metadata") or {}).get("name", "?")
            yield Finding(
                rel,
                _line_of(text, "kind: Secret") or 1,
                "secret-manifest",
                f"plaintext Secret {name!r} with data: move it to secrets/ "
                "(`hydradeploy secrets import FILE`)",
            )
            return
        env_name = node.get("name")
        env_value = node.get("value")
        if (
            isinstance(env_name, str)
            and isinstance(env_value, str)
            and secret_names.is_secret(env_name, env_value)
        ):
            yield Finding(
                rel,
                _line_of(text, env_value),
                "secret-value",
                f"{env_name} has a literal secret-looking value ({_redact(env_value)}): "
                "use a Secret reference",
            )
        for key, value in node.items():
            if isinstance(key, str) and isinstance(value, str) and is_secret_name(key):
                if looks_secret(value):
                    yield Finding(
                        rel,
                        _line_of(text, value),
                        "secret-value",
                        f"{key} has a literal secret-looking value ({_redact(value)})",
                    )
            else:
                yield from _walk(value, text, rel)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, text, rel)


def scan_text(text: str, rel: str, known: Iterable[str] = ()) -> list[Finding]:
    """Every finding in one file's text; `rel` is the path reported."""
    found: set[Finding] = set()
    is_nix = rel.endswith(".nix")
    lines = text.splitlines()
    allowed = {i + 1 for i, ln in enumerate(lines) if ALLOW_MARK in ln}
    for i, line in enumerate(lines, start=1):
        if i in allowed:
            continue
        if PRIVATE_KEY_RE.search(line):
            found.add(Finding(rel, i, "private-key", "private key material"))
        for m in URL_CREDENTIALS_RE.finditer(line):
            if not m.group("pw").startswith(("$", "<", "{{", "%")):
                found.add(Finding(rel, i, "url-credentials", "a URL with a literal password"))
        if K3S_TOKEN_RE.search(line):
            found.add(Finding(rel, i, "k3s-token", "a k3s token (K10…::server:…)"))
        for m in ASSIGN_RE.finditer(line):
            if is_nix and not m.group("q"):
                continue  # an unquoted Nix value is an expression, not a literal
            if is_secret_name(m.group("name")) and looks_secret(m.group("value")):
                found.add(
                    Finding(
                        rel,
                        i,
                        "secret-value",
                        f"{m.group('name')} is assigned a secret-looking value "
                        f"({_redact(m.group('value'))})",
                    )
                )
        if re.search(r"""kind\s*=\s*"Secret"\s*;""", line):
            window = "\n".join(lines[i - 1 : i + 15])
            if re.search(r"\b(stringData|data)\b[\w.\"-]*\s*=", window):
                found.add(Finding(rel, i, "secret-manifest", "a Secret with data written in Nix"))
    for value in known:
        if len(value) >= 8 and value in text:
            at = _line_of(text, value)
            if at not in allowed:
                found.add(Finding(rel, at, "known-secret", "contains a known secret value"))
    if rel.endswith((".yaml", ".yml", ".json")):
        try:
            docs: list[Any] = (
                [json.loads(text)] if rel.endswith(".json") else list(yaml.safe_load_all(text))
            )
        except (ValueError, yaml.YAMLError):
            docs = []
        for doc in docs:
            for f in _walk(doc, text, rel):
                if f.line not in allowed and not any(
                    g.line == f.line and g.kind == f.kind for g in found
                ):
                    found.add(f)
    return sorted(found)


def files_to_scan(root: Path, roots: Iterable[str] = SCAN_ROOTS) -> list[Path]:
    """Files git would commit under the scanned roots (tracked plus untracked and not
    ignored); without git, every file under them. Encrypted .age files are skipped."""
    roots = [r for r in roots if (root / r).exists()]
    if not roots:
        return []
    try:
        res = local.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard", "--", *roots],
            timeout=60,
        )  # fmt: skip
        listed = res.stdout.split("\0") if res.ok else None
    except (OSError, local.LocalError):
        listed = None
    if listed is None:
        paths = []
        for r in roots:
            p = root / r
            paths += [p] if p.is_file() else [q for q in p.rglob("*") if q.is_file()]
    else:
        paths = [root / p for p in listed if p]
    return sorted(
        p
        for p in set(paths)
        if p.is_file() and not p.name.endswith(".age") and ".git" not in p.parts
    )


def scan_files(root: Path, paths: Iterable[Path], known: Iterable[str] = ()) -> list[Finding]:
    known = [k for k in known if len(k) >= 8]
    out: list[Finding] = []
    for path in paths:
        try:
            data = path.read_bytes()[:MAX_BYTES]
        except OSError:
            continue
        if b"\0" in data[:8192]:
            continue  # binary
        rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        out += scan_text(data.decode("utf-8", errors="replace"), rel, known)
    return sorted(out)


def scan_repo(root: Path, known: Iterable[str] = ()) -> list[Finding]:
    return scan_files(root, files_to_scan(root), known)
