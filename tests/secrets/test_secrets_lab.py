"""Secrets on lab hosts: real sshd, real host keys. Keys are collected over SSH with
host-key verification, files are encrypted to them, and each host decrypts with its own
/etc/ssh/ssh_host_ed25519_key — inside the host, as agenix does on NixOS."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hydradeploy.inventory import load_inventory
from secrets_helpers import Repo, git, keygen, pub

pytestmark = pytest.mark.lab
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Any:
    try:
        factory = request.getfixturevalue("lab_factory")
    except pytest.FixtureLookupError:
        pytest.skip("the lab pytest plugin (tests/lab_plugin.py) is not registered")
    from hydradeploy.lab import HostSpec

    return factory(
        [HostSpec("srv", "server"), HostSpec("w1", "agent"), HostSpec("w2", "agent")]
    )


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return keygen(tmp_path_factory.mktemp("admin") / "admin", "admin")


def write_lab_inventory(
    repo: Repo,
    lab: Any,
    hosts: list[str],
    *,
    with_host_keys: bool,
    known_hosts: Path | None = None,
) -> None:
    """The repository's inventory for the lab hosts: their lab addresses and SSH
    settings, our admin key, and (optionally) no host keys, so `hostkeys` must collect."""
    inv = load_inventory(lab.inventory_path)
    first = inv.hosts[hosts[0]]
    lines = [
        "[cluster]",
        'name = "lab"',
        f'admin_keys = ["{pub(repo.keys["admin"])}"]',
        "",
        "[ssh]",
        f'user = "{first.ssh.user}"',
        f'key = "{first.ssh.key}"',
        f'known_hosts = "{known_hosts or first.ssh.known_hosts}"',
    ]
    for name in hosts:
        h = inv.hosts[name]
        lines += [
            "",
            f"[hosts.{name}]",
            f'address = "{h.address}"',
            f'role = "{h.role}"',
        ]
        if h.cluster_init:
            lines.append("cluster_init = true")
        if with_host_keys:
            lines.append(f'ssh = {{ host_key = "{h.ssh.host_key}" }}')
    repo.inventory.parent.mkdir(parents=True, exist_ok=True)
    repo.inventory.write_text("\n".join(lines) + "\n")


@pytest.fixture
def lab_repo(tmp_path: Path, lab: Any, admin: Path) -> Repo:
    repo = Repo(tmp_path / "repo", {"admin": admin})
    repo.root.mkdir()
    git(repo.root, "init", "-q")
    write_lab_inventory(repo, lab, ["srv", "w1", "w2"], with_host_keys=False)
    return repo


def armor(data: bytes) -> str:
    """The same age file in age's ASCII armor (age -d reads either), so it can be
    passed as text on the host's stdin."""
    b64 = base64.b64encode(data).decode()
    body = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN AGE ENCRYPTED FILE-----\n{body}\n-----END AGE ENCRYPTED FILE-----\n"


def decrypt_on_host(
    lab: Any, host: str, ciphertext: Path
) -> subprocess.CompletedProcess[str]:
    """age -d with the host's own private host key, run inside the host (its /tmp is
    its own, so the ciphertext comes on stdin)."""
    return lab.run(
        host,
        ["age", "-d", "-i", HOST_KEY],
        input=armor(ciphertext.read_bytes()),
        timeout=30,
    )


def test_hostkeys_collects_every_lab_host_key_over_verified_ssh(
    lab: Any, lab_repo: Repo
) -> None:
    r = lab_repo.cli("secrets", "hostkeys", "--output", "json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    inv = load_inventory(lab.inventory_path)
    from hydradeploy.secrets.keys import parse_public_key

    for row in report["hosts"]:
        expected = parse_public_key(inv.hosts[row["host"]].ssh.host_key)
        assert row["status"] == "verified" and row["change"] == "new"
        assert row["fingerprint"] == expected.fingerprint
        # The same key the host holds privately.
        own = lab.run(row["host"], ["ssh-keygen", "-y", "-f", HOST_KEY]).stdout
        assert parse_public_key(own) == expected
    stored = (lab_repo.secrets / "host-keys.toml").read_text()
    assert all(f'"{h}" = "ssh-ed25519 ' in stored for h in ("srv", "w1", "w2"))
    again = lab_repo.cli("secrets", "hostkeys", "--output", "json")
    assert {row["change"] for row in json.loads(again.stdout)["hosts"]} == {"unchanged"}


def test_encrypted_token_and_manifest_decrypt_on_each_host_that_needs_them(
    lab: Any, lab_repo: Repo
) -> None:
    assert lab_repo.cli("secrets", "hostkeys").returncode == 0
    init = lab_repo.cli("secrets", "init", "--show")
    assert init.returncode == 0, init.stderr
    token = init.stdout.strip().splitlines()[-1]
    plain = lab_repo.secrets / "plain" / "apps" / "db.yaml"
    plain.parent.mkdir(parents=True)
    plain.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: apps}\n"
        "stringData: {PASSWORD: Lab-Secret-Value-123}\n"
    )
    assert lab_repo.cli("secrets", "import").returncode == 0
    token_file = lab_repo.secrets / "k3s-token.age"
    manifest = lab_repo.secrets / "manifests" / "apps-db.yaml.age"
    for host in ("srv", "w1", "w2"):
        out = decrypt_on_host(lab, host, token_file)
        assert out.returncode == 0, (host, out.stderr)
        assert out.stdout == token
    assert "Lab-Secret-Value-123" in decrypt_on_host(lab, "srv", manifest).stdout
    for agent in ("w1", "w2"):
        assert decrypt_on_host(lab, agent, manifest).returncode != 0  # servers only
    remote = lab_repo.cli("secrets", "check", "--on-hosts", "--output", "json")
    assert remote.returncode == 0, remote.stdout + remote.stderr
    files = {
        f["file"]: sorted(f["decrypted_by"]) for f in json.loads(remote.stdout)["files"]
    }
    assert files == {
        "k3s-token.age": ["srv", "w1", "w2"],
        "manifests/apps-db.yaml.age": ["srv"],
    }


def test_a_host_removed_from_the_inventory_cannot_decrypt_after_rekey(
    lab: Any, lab_repo: Repo
) -> None:
    assert lab_repo.cli("secrets", "hostkeys").returncode == 0
    assert lab_repo.cli("secrets", "init").returncode == 0
    token_file = lab_repo.secrets / "k3s-token.age"
    assert decrypt_on_host(lab, "w2", token_file).returncode == 0
    write_lab_inventory(lab_repo, lab, ["srv", "w1"], with_host_keys=False)
    assert lab_repo.cli("secrets", "check", "--no-scan").returncode == 1
    r = lab_repo.cli(
        "secrets", "rekey", "-i", str(lab_repo.keys["admin"]), "--output", "json"
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["removed"] == ["w2 (removed)"]
    denied = decrypt_on_host(lab, "w2", token_file)
    assert denied.returncode != 0 and "no identity matched" in denied.stderr
    for host in ("srv", "w1"):
        assert decrypt_on_host(lab, host, token_file).returncode == 0
    assert lab_repo.cli("secrets", "check", "--no-scan").returncode == 0
    # parsed, not searched: "w2" can occur inside a base64 key (it did, one run in ~10)
    stored = tomllib.loads((lab_repo.secrets / "host-keys.toml").read_text())
    names = _toml_keys(stored)
    assert "w2" not in names and {"srv", "w1"} <= names, names


def test_hostkeys_refuses_a_key_that_differs_from_known_hosts(
    lab: Any, lab_repo: Repo, tmp_path: Path
) -> None:
    # known_hosts claims another key for srv: a man in the middle, as far as we know.
    impostor = keygen(tmp_path / "impostor", "impostor")
    known = tmp_path / "known_hosts"
    inv = load_inventory(lab.inventory_path)
    lines = [
        f"{h.address} {pub(impostor) if n == 'srv' else h.ssh.host_key}"
        for n, h in inv.hosts.items()
    ]
    known.write_text("\n".join(lines) + "\n")
    write_lab_inventory(
        lab_repo, lab, ["srv", "w1", "w2"], with_host_keys=False, known_hosts=known
    )
    r = lab_repo.cli("secrets", "hostkeys", "--output", "json")
    assert r.returncode == 1
    rows = {row["host"]: row for row in json.loads(r.stdout)["hosts"]}
    assert rows["srv"]["status"] == "mismatch" and rows["w1"]["status"] == "verified"
    assert not (lab_repo.secrets / "host-keys.toml").exists()  # nothing written
    assert not (lab_repo.secrets / "secrets.nix").exists()


def test_hostkeys_trusts_an_unknown_host_only_when_asked(
    lab: Any, lab_repo: Repo, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    write_lab_inventory(
        lab_repo, lab, ["srv", "w1", "w2"], with_host_keys=False, known_hosts=empty
    )
    r = lab_repo.cli("secrets", "hostkeys", "srv", "--output", "json")
    assert r.returncode == 1 and json.loads(r.stdout)["hosts"][0]["status"] == "unknown"
    assert not (lab_repo.secrets / "host-keys.toml").exists()
    r = lab_repo.cli("secrets", "hostkeys", "srv", "--accept-new", "--output", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["hosts"][0]["status"] == "new"


def test_hostkeys_reports_an_unreachable_host(lab: Any, lab_repo: Repo) -> None:
    lab.cut("w1")
    try:
        r = lab_repo.cli("secrets", "hostkeys", "--timeout", "2", "--output", "json")
    finally:
        lab.restore("w1")
    assert r.returncode == 1
    rows = {row["host"]: row["status"] for row in json.loads(r.stdout)["hosts"]}
    assert rows == {"srv": "verified", "w1": "unreachable", "w2": "verified"}


def test_age_is_available_inside_lab_hosts(lab: Any) -> None:
    assert shutil.which("age")
    assert lab.run("srv", ["age", "--version"]).returncode == 0


def test_check_on_hosts_reports_a_host_that_cannot_decrypt(
    lab: Any, lab_repo: Repo
) -> None:
    write_lab_inventory(lab_repo, lab, ["srv", "w1", "w2"], with_host_keys=True)
    assert lab_repo.cli("secrets", "init").returncode == 0
    # Re-encrypt the token by hand, leaving w1 out, as a careless `age -e` would.
    inv = load_inventory(lab.inventory_path)
    token_file = lab_repo.secrets / "k3s-token.age"
    recipients = [inv.hosts["srv"].ssh.host_key, inv.hosts["w2"].ssh.host_key]
    argv = ["age", "-e", "-o", str(token_file)]
    for key in [*recipients, pub(lab_repo.keys["admin"])]:
        argv += ["-r", " ".join(key.split()[:2])]
    subprocess.run(
        argv, input=b"0123456789abcdef0123456789abcdef", check=True, timeout=30
    )
    r = lab_repo.cli("secrets", "check", "--no-scan", "--on-hosts", "--output", "json")
    assert r.returncode == 1
    report = json.loads(r.stdout)
    messages = [f["message"] for f in report["findings"]]
    assert any(
        m.startswith("does not decrypt on w1: no identity matched") for m in messages
    )
    assert any(
        "cannot be decrypted by w1" in m for m in messages
    )  # from the header alone
    assert sorted(report["files"][0]["decrypted_by"]) == ["srv", "w2"]
    # naming hosts decrypts on those only (the same selection as deploy's)
    r = lab_repo.cli(
        "secrets", "check", "--no-scan", "--on", "w1,w2", "--output", "json"
    )
    report = json.loads(r.stdout)
    assert sorted(report["files"][0]["decrypted_by"]) == ["w2"]
    assert not any("srv" in f["message"] for f in report["findings"])
    lab.cut("w2")
    try:
        r = lab_repo.cli(
            "secrets",
            "check",
            "--no-scan",
            "--on-hosts",
            "--timeout",
            "3",
            "--output",
            "json",
        )
    finally:
        lab.restore("w2")
    messages = [f["message"] for f in json.loads(r.stdout)["findings"]]
    assert any(m.startswith("does not decrypt on w2: cannot connect") for m in messages)


def _toml_keys(doc: Any) -> set[str]:
    """Every key of a parsed TOML document, at any depth (host names are keys)."""
    if not isinstance(doc, dict):
        return set()
    return set(doc) | {k for v in doc.values() for k in _toml_keys(v)}
