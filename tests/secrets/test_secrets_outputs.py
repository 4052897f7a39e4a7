"""No known secret value in anything the tooling produces: the converter's k8s/ output
(secret-looking environment values must go to Secret manifests under secrets/plain/,
which `secrets import` then accepts), and the flake's pure Nix functions evaluated over
a repository holding real encrypted secrets (only ciphertext paths and /run paths may
appear, never a value). Also: the generated secrets.nix is what agenix will read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hydradeploy.secrets.manifests import secret_values
from hydradeploy.secrets.scan import is_secret_name, scan_files, scan_text
from secrets_helpers import Repo, age_decrypt, run_cli

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "modules" / "lib"
COMPOSE = REPO / "hosts" / "examples" / "compose" / "docker-compose.yml"
PODMAN = REPO / "hosts" / "examples" / "podman-host" / "containers.json"
KNOWN_ENV = {
    "POSTGRES_PASSWORD": "KnownPg-Secret-4711xyz",
    "WEBUI_SECRET_KEY": "KnownWebui-Key-0815abc",
    "OPENAI_API_KEY": "sk-Known-OpenAI-99zz",
}
TOKEN = "KnownClusterToken-0123456789abcdef0123456789"
MANIFEST_VALUE = "Known-Manifest-Value-42xyz"

needs_nix = pytest.mark.skipif(
    shutil.which("nix-instantiate") is None, reason="nix-instantiate is not installed"
)


def nix_eval(expr: str) -> Any:
    proc = subprocess.run(
        [
            "nix-instantiate",
            "--eval",
            "--strict",
            "--json",
            "--readonly-mode",
            "-E",
            expr,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NIX_PATH": ""},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def nix_path(p: Path) -> str:
    return f"(/. + {json.dumps(str(p))})"


def converter_available() -> bool:
    return (REPO / "tools/hydradeploy/src/hydradeploy/convert/cli.py").is_file()


def assert_no_leak(files: list[Path], root: Path, known: list[str]) -> None:
    findings = scan_files(root, files, known)
    assert findings == [], "\n".join(map(str, findings))


@pytest.mark.skipif(
    not converter_available(), reason="the converter is not in this tree"
)
def test_compose_conversion_keeps_secret_values_out_of_k8s(
    repo: Repo, tmp_path: Path
) -> None:
    out, plain = tmp_path / "k8s", repo.secrets / "plain"
    r = run_cli(
        "convert", "compose-to-k8s", "-q", str(COMPOSE), "--out", str(out),
        "--secrets-dir", str(plain),
        cwd=repo.root, env={"HYDRA_ROOT": str(repo.root), **KNOWN_ENV},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    produced = sorted(p for p in out.rglob("*") if p.is_file())
    assert produced
    # The values the compose file interpolates must not be anywhere under k8s/.
    used = [v for k, v in KNOWN_ENV.items() if k in COMPOSE.read_text()]
    assert_no_leak(produced, tmp_path, used)
    # Each one the converter moved out is in a plaintext Secret, mode 0600 …
    pending = sorted(plain.rglob("*.yaml"))
    assert pending and all((p.stat().st_mode & 0o077) == 0 for p in pending)
    moved = [v for p in pending for v in secret_values(p.read_bytes())]
    assert set(used) & set(moved)
    # … which `secrets import` accepts as a valid v1 Secret, encrypts, and wipes.
    assert repo.cli("secrets", "init").returncode == 0
    imp = repo.cli("secrets", "import", "--output", "json")
    assert imp.returncode == 0, imp.stderr
    assert len(json.loads(imp.stdout)) == len(pending)
    assert not any(p.exists() for p in pending)
    # The converted tree inside the repository passes `secrets check`, decrypting all.
    shutil.copytree(out, repo.root / "k8s")
    check = repo.cli("secrets", "check", "-i", str(repo.keys["srv"]))
    assert check.returncode == 0, check.stdout + check.stderr
    for p in (repo.secrets / "manifests").iterdir():
        assert age_decrypt(p, repo.keys["srv"]).returncode == 0


@pytest.mark.skipif(
    not converter_available(), reason="the converter is not in this tree"
)
def test_podman_conversion_output_has_no_secret_looking_literal(tmp_path: Path) -> None:
    out, plain = tmp_path / "k8s", tmp_path / "plain"
    r = run_cli(
        "convert", "podman-to-k8s", "-q", "--json", str(PODMAN), "--out", str(out),
        "--secrets-dir", str(plain), cwd=REPO, env={},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    containers = json.loads(PODMAN.read_text())
    known = [
        v
        for c in containers.values()
        for k, v in (c.get("environment") or {}).items()
        if is_secret_name(k) and isinstance(v, str) and len(v) >= 8
    ]
    assert_no_leak(sorted(p for p in out.rglob("*") if p.is_file()), tmp_path, known)


@needs_nix
def test_nix_functions_see_only_ciphertext_and_run_paths(
    repo: Repo, tmp_path: Path
) -> None:
    for lib in ("manifests.nix", "k3s-flags.nix", "microvms.nix", "inventory.nix"):
        if not (LIB / lib).is_file():
            pytest.skip(f"modules/lib/{lib} is not in this tree")
    # w1 hosts a microVM agent: its token comes through w1, never through the store.
    repo.write_inventory(
        {"srv": "server", "w1": "agent", "w2": "agent"},
        extra_host={
            "w1": {"microvms": '[{ name = "w1-vm1", address = "198.18.250.60" }]'}
        },
    )
    assert repo.cli("secrets", "init", "--token-stdin", input=TOKEN).returncode == 0
    plain = repo.secrets / "plain" / "apps" / "db.yaml"
    plain.parent.mkdir(parents=True)
    plain.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: apps}\n"
        f"stringData: {{PASSWORD: {MANIFEST_VALUE}}}\n"
    )
    assert repo.cli("secrets", "import").returncode == 0
    hosts = ["srv", "w1", "w2"]
    flags = " ".join(
        f'"{h}" = import {nix_path(LIB / "k3s-flags.nix")} '
        f'{{ inventory = inv; host = "{h}"; tokenFile = "/run/agenix/k3s-token"; }};'
        for h in hosts
    )
    result = nix_eval(
        f"let inv = (import {nix_path(LIB / 'inventory.nix')}).load {nix_path(repo.inventory)}; in {{ "
        f"manifests = import {nix_path(LIB / 'manifests.nix')} "
        f"{{ k8sDir = {nix_path(REPO / 'k8s')}; secretsDir = {nix_path(repo.secrets)}; }}; "
        f"flags = {{ {flags} }}; "
        f'microvms = import {nix_path(LIB / "microvms.nix")} {{ inventory = inv; host = "w1"; }}; }}'
    )
    text = json.dumps(result, indent=1, sort_keys=True)
    for value in (TOKEN, MANIFEST_VALUE):
        assert value not in text
    findings = scan_text(text, "nix-eval.json", known=[TOKEN, MANIFEST_VALUE])
    assert findings == [], "\n".join(map(str, findings))
    (secret,) = result["manifests"]["secretManifests"]
    # Only the ciphertext may enter the store (agenix decrypts at activation).
    assert secret["file"].endswith("apps-db.yaml.age")
    assert secret["path"].startswith("/var/lib/rancher/k3s/server/manifests/")
    assert secret["mode"] == "0400" and secret["owner"] == "root"
    for h in hosts:
        flags = result["flags"][h]["flags"]
        assert "--token-file=/run/agenix/k3s-token" in flags
        assert not any(
            f.startswith("--token=") for f in flags
        )  # never the value itself
    (guest,) = result["microvms"]
    assert guest["hostTokenFile"].startswith("/run/")
    assert f"--token-file={guest['guestTokenFile']}" in guest["k3s"]["flags"]
    assert guest["guestTokenFile"].startswith("/run/")
    # The guest has no key of its own: the token stays encrypted to the hosts only.
    header = (repo.secrets / "k3s-token.age").read_bytes().split(b"\n---")[0]
    assert header.count(b"-> ssh-ed25519") == 4  # srv, w1, w2, admin


@needs_nix
def test_generated_rules_are_what_agenix_reads(repo: Repo) -> None:
    assert repo.cli("secrets", "init").returncode == 0
    plain = repo.secrets / "plain" / "apps" / "db.yaml"
    plain.parent.mkdir(parents=True)
    plain.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: apps}\nstringData: {A: b}\n"
    )
    assert repo.cli("secrets", "import").returncode == 0
    rules = nix_eval(f"import {nix_path(repo.secrets / 'secrets.nix')}")
    key = {
        n: " ".join(Path(f"{p}.pub").read_text().split()[:2])
        for n, p in repo.keys.items()
    }
    assert rules == {
        "k3s-token.age": {
            "publicKeys": [key["srv"], key["w1"], key["w2"], key["admin"]]
        },
        "manifests/apps-db.yaml.age": {"publicKeys": [key["srv"], key["admin"]]},
    }


def test_converter_plain_dir_is_git_ignored() -> None:
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "/secrets/plain/" in ignored
