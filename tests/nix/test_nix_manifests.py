"""The auto-deploy manifest list (modules/lib/manifests.nix): every YAML under k8s/,
Secret manifests only as agenix files decrypted into the manifests directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nixeval import LIB, REPO, nix_eval, nix_eval_error, nix_str, requires_nix

pytestmark = requires_nix


def manifests(k8s: Path | None, secrets: Path | None) -> dict[str, Any]:
    k = nix_str(k8s) if k8s else "null"
    s = nix_str(secrets) if secrets else "null"
    result: dict[str, Any] = nix_eval(
        f"let m = import {nix_str(LIB / 'manifests.nix')} {{ k8sDir = {k}; secretsDir = {s}; }}; in "
        "{ inherit (m) ageSecrets; list = map (x: { inherit (x) name target relative; }) m.manifests; "
        "names = builtins.attrNames m.k3sManifests; }"
    )
    return result


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_every_yaml_under_k8s_recursively(tmp_path: Path) -> None:
    k8s = tmp_path / "k8s"
    write(k8s / "platform" / "runtimeclass.yaml", "kind: RuntimeClass\n")
    write(k8s / "platform" / "nvidia" / "device-plugin.yml", "kind: DaemonSet\n")
    write(k8s / "apps" / "ollama.yaml", "kind: Deployment\n---\nkind: Service\n")
    write(k8s / "apps" / "kustomization.yaml", "resources: []\n")
    write(k8s / "apps" / ".ollama.yaml.swp", "x")
    write(k8s / "README.md", "not a manifest\n")
    got = manifests(k8s, None)
    assert got["list"] == [
        {
            "name": "hydra-apps-ollama",
            "target": "hydra-apps-ollama.yaml",
            "relative": "k8s/apps/ollama.yaml",
        },
        {
            "name": "hydra-platform-nvidia-device-plugin",
            "target": "hydra-platform-nvidia-device-plugin.yml",
            "relative": "k8s/platform/nvidia/device-plugin.yml",
        },
        {
            "name": "hydra-platform-runtimeclass",
            "target": "hydra-platform-runtimeclass.yaml",
            "relative": "k8s/platform/runtimeclass.yaml",
        },
    ]
    assert got["ageSecrets"] == {}


def test_secret_manifests_come_only_from_agenix(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    write(secrets / "manifests" / "hf-token.yaml.age", "age-encrypted")
    write(secrets / "manifests" / "notes.txt", "ignored")
    write(secrets / "k3s-token.age", "age-encrypted")
    got = manifests(None, secrets)
    assert got["list"] == []
    entry = got["ageSecrets"]["manifest-hf-token"]
    assert (
        entry["path"]
        == "/var/lib/rancher/k3s/server/manifests/hydra-secret-hf-token.yaml"
    )
    assert entry["mode"] == "0400"
    assert entry["owner"] == "root"
    assert entry["symlink"] is False
    assert entry["file"].endswith("hf-token.yaml.age")
    assert list(got["ageSecrets"]) == ["manifest-hf-token"]


def test_a_plain_secret_under_k8s_is_refused(tmp_path: Path) -> None:
    k8s = tmp_path / "k8s"
    write(
        k8s / "apps" / "creds.yaml",
        "apiVersion: v1\nkind: Secret\nstringData:\n  a: b\n",
    )
    err = nix_eval_error(
        f"(import {nix_str(LIB / 'manifests.nix')} {{ k8sDir = {nix_str(k8s)}; }}).manifests"
    )
    assert "k8s/apps/creds.yaml declares a Secret" in err


def test_fresh_clone_without_k8s_or_secrets_evaluates(tmp_path: Path) -> None:
    got = manifests(tmp_path / "missing-k8s", tmp_path / "missing-secrets")
    assert got == {"ageSecrets": {}, "list": [], "names": []}


def test_the_repository_k8s_tree() -> None:
    """What the servers of the example cluster deploy: exactly the YAML files in k8s/."""
    expected = sorted(
        str(p.relative_to(REPO))
        for p in (REPO / "k8s").rglob("*")
        if p.is_file()
        and p.suffix in (".yaml", ".yml")
        and p.name not in ("kustomization.yaml", "kustomization.yml")
        and not p.name.startswith(".")
    )
    got = manifests(REPO / "k8s", REPO / "secrets")
    assert sorted(m["relative"] for m in got["list"]) == expected
    assert len(got["names"]) == len(expected)
