"""The repository's example inputs through the real CLI: valid for the cluster's
Kubernetes version, deterministic, --check clean and then catching drift, secrets kept
out of k8s/, and containers.json agreeing with containers.nix."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from convert_helpers import run_cli, validate_strict
from oci_defaults import evaluated


def _convert_podman(
    out: Path, secrets: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "convert", "podman-to-k8s", "--json", "hosts/examples/podman-host/containers.json",
        "--host", "hydra-ai", "--out", str(out), "--secrets-dir", str(secrets), *extra,
    )  # fmt: skip


def _convert_compose(
    out: Path, secrets: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "convert", "compose-to-k8s", "hosts/examples/compose/docker-compose.yml", "--host", "hydra-ai",
        "--project-dir", "/srv/ai-system", "--out", str(out), "--secrets-dir", str(secrets), *extra,
    )  # fmt: skip


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    "convert", [_convert_podman, _convert_compose], ids=["podman", "compose"]
)
def test_example_converts_validates_and_is_deterministic(
    convert: object, tmp_path: Path
) -> None:
    run = convert  # type: ignore[assignment]
    first = run(
        tmp_path / "a", tmp_path / "s", "--report", str(tmp_path / "report.json")
    )  # type: ignore[operator]
    assert first.returncode == 0, first.stderr
    second = run(tmp_path / "b", tmp_path / "s2")  # type: ignore[operator]
    assert second.returncode == 0, second.stderr
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    docs = [
        d
        for p in (tmp_path / "a").rglob("*.yaml")
        for d in yaml.safe_load_all(p.read_text())
    ]
    assert len(docs) > 10
    for doc in docs:
        validate_strict(doc)
    assert not any(d["kind"] == "Secret" for d in docs)
    for secret_file in (tmp_path / "s").rglob("*.yaml"):
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        (secret_doc,) = yaml.safe_load_all(secret_file.read_text())
        validate_strict(secret_doc)
        out_text = "".join(p.read_text() for p in (tmp_path / "a").rglob("*.yaml"))
        for value in secret_doc["stringData"].values():
            assert value not in out_text
    report = json.loads((tmp_path / "report.json").read_text())
    assert {c["name"] for c in report["containers"]} == {
        p.stem for p in (tmp_path / "a").rglob("*.yaml") if not p.stem.startswith("_")
    }
    assert all(
        c["workload"] in ("Deployment", "StatefulSet") for c in report["containers"]
    )
    assert "converted" in first.stderr and "to do:" in first.stderr


def test_validation_is_real() -> None:
    """The schema check rejects what the API server would (so the tests above mean something)."""
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "one"},
    }
    with pytest.raises(Exception):  # noqa: B017 - kubernetes_validate raises its own types
        validate_strict(bad)
    unknown_field = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"portz": []},
    }
    with pytest.raises(Exception):  # noqa: B017
        validate_strict(unknown_field)


def test_check_is_clean_then_reports_semantic_drift(tmp_path: Path) -> None:
    out, secrets = tmp_path / "out", tmp_path / "secrets"
    missing = _convert_podman(out, secrets, "--check")
    assert missing.returncode == 1 and "missing (would be written)" in missing.stderr
    assert not out.exists()
    assert _convert_podman(out, secrets).returncode == 0
    clean = _convert_podman(out, secrets, "--check")
    assert clean.returncode == 0, clean.stderr
    # reformatting is not drift: rewrite one file with other YAML style and a comment
    sonarr = out / "hydra-ai" / "sonarr.yaml"
    header = sonarr.read_text().splitlines(keepends=True)[0]  # names the file's source
    docs = list(yaml.safe_load_all(sonarr.read_text()))
    sonarr.write_text(
        header
        + "# hand-formatted\n"
        + yaml.safe_dump_all(docs, sort_keys=True, default_flow_style=True)
    )
    assert _convert_podman(out, secrets, "--check").returncode == 0
    # a real change is drift, shown as a path in the object, not a text diff
    docs[-1]["spec"]["replicas"] = 3
    sonarr.write_text(header + yaml.safe_dump_all(docs))
    (out / "hydra-ai" / "stale.yaml").write_text(header + "kind: ConfigMap\n")
    # a file of another source (or hand-written) is not this conversion's drift
    (out / "hydra-ai" / "other.yaml").write_text("kind: ConfigMap\n")
    before = _tree(out)
    drift = _convert_podman(out, secrets, "--check")
    assert drift.returncode == 1
    assert (
        "Deployment/sonarr" in drift.stderr and "['spec']['replicas']" in drift.stderr
    )
    assert "stale.yaml: on disk but no longer generated" in drift.stderr
    assert "other.yaml" not in drift.stderr
    assert _tree(out) == before  # --check writes nothing


def test_rerun_replaces_its_own_files_only(tmp_path: Path) -> None:
    out, secrets = tmp_path / "out", tmp_path / "secrets"
    (out / "hydra-ai").mkdir(parents=True)
    mine = "# Generated by `hydradeploy convert` from hosts/examples/podman-host/containers.json. Do not edit: x\n"
    (out / "hydra-ai" / "removed-container.yaml").write_text(mine + "old")
    hand = out / "hydra-ai" / "hand-written.yaml"
    hand.write_text("kind: ConfigMap\n")
    (out / "other-namespace").mkdir()
    (out / "other-namespace" / "keep.yaml").write_text("kept")
    assert _convert_podman(out, secrets).returncode == 0
    assert not (out / "hydra-ai" / "removed-container.yaml").exists()
    assert hand.read_text() == "kind: ConfigMap\n"  # not the converter's: kept
    assert (out / "other-namespace" / "keep.yaml").read_text() == "kept"
    assert sorted(p.name for p in out.iterdir()) == [
        "hydra-ai",
        "other-namespace",
    ]  # no temp dirs left


def test_default_out_is_k8s_converted_of_the_repository(
    tmp_path: Path, repo: Path
) -> None:
    root = tmp_path / "repo"
    (root / "hosts").mkdir(parents=True)
    shutil.copy(repo / "hosts" / "inventory.toml", root / "hosts" / "inventory.toml")
    data = root / "c.json"
    data.write_text(
        json.dumps(
            {"web": {"image": "nginx:1.27", "environment": {"API_TOKEN": "t0ps3cret"}}}
        )
    )
    result = run_cli(
        "convert",
        "podman-to-k8s",
        "--json",
        str(data),
        "-q",
        cwd=root,
        env={"HYDRA_ROOT": str(root)},
    )
    assert result.returncode == 0, result.stderr
    assert (root / "k8s" / "converted" / "default" / "web.yaml").is_file()
    secret = root / "secrets" / "plain" / "default" / "web-env.yaml"
    assert "t0ps3cret" in secret.read_text()
    assert (
        "t0ps3cret"
        not in (root / "k8s" / "converted" / "default" / "web.yaml").read_text()
    )
    _service, deployment = yaml.safe_load_all(
        (root / "k8s" / "converted" / "default" / "web.yaml").read_text()
    )
    assert deployment["metadata"]["annotations"]["hydra.io/source"] == "c.json#web"


def test_gpu_all_uses_the_inventory_count(tmp_path: Path) -> None:
    data = tmp_path / "c.json"
    data.write_text(
        json.dumps({"comfy": {"image": "comfy", "devices": ["nvidia.com/gpu=all"]}})
    )
    for host, count in (("hydra-compute", 2), ("hydra-ai", 2), ("hydra-amd", 1)):
        out = tmp_path / host
        assert (
            run_cli(
                "convert",
                "podman-to-k8s",
                "--json",
                str(data),
                "--host",
                host,
                "--out",
                str(out),
                "-q",
            ).returncode
            == 0
        )
        docs = list(yaml.safe_load_all((out / host / "comfy.yaml").read_text()))
        limits = docs[-1]["spec"]["template"]["spec"]["containers"][0]["resources"][
            "limits"
        ]
        assert limits == {"nvidia.com/gpu": count}
    missing_inventory = run_cli(
        "--inventory", str(tmp_path / "none.toml"), "convert", "podman-to-k8s", "--json", str(data),
        "--host", "hydra-ai", "--out", str(tmp_path / "x"),
    )  # fmt: skip
    assert missing_inventory.returncode == 0
    assert (
        "not found" in missing_inventory.stderr
        and "asking for 1" in missing_inventory.stderr
    )


def test_containers_json_is_what_nix_eval_prints_for_containers_nix(
    examples: Path,
) -> None:
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix-instantiate not installed")
    expr = f"((import {examples / 'podman-host' / 'containers.nix'}) {{}}).virtualisation.oci-containers.containers"
    raw = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
        capture_output=True, text=True, check=True, timeout=120,
        env={**os.environ, "NIX_REMOTE": os.environ.get("NIX_REMOTE", "")},
    )  # fmt: skip
    expected = evaluated(json.loads(raw.stdout))
    assert (
        json.loads((examples / "podman-host" / "containers.json").read_text())
        == expected
    )


def test_flake_mode_reports_nix_errors_cleanly(tmp_path: Path) -> None:
    if shutil.which("nix") is None:
        pytest.skip("nix not installed")
    result = run_cli(
        "convert",
        "podman-to-k8s",
        "--flake",
        f"{tmp_path}#nohost",
        "--out",
        str(tmp_path / "o"),
        timeout=300,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("hydradeploy: error: --flake")
        and "nix eval failed" in lines[0]
    )
    assert not (tmp_path / "o").exists()


def test_pinning_to_a_host_that_is_no_node_is_warned(tmp_path: Path) -> None:
    data = tmp_path / "c.json"
    data.write_text(json.dumps({"app": {"image": "x", "volumes": ["/srv/app:/data"]}}))
    result = run_cli(
        "convert",
        "podman-to-k8s",
        "--json",
        str(data),
        "--host",
        "ghost",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.returncode == 0
    assert "--host 'ghost' is not a k3s node" in result.stderr
    ok = run_cli(
        "convert",
        "podman-to-k8s",
        "--json",
        str(data),
        "--host",
        "hydra-amd-vm1",
        "--out",
        str(tmp_path / "o2"),
    )
    assert (
        ok.returncode == 0 and "is not a k3s node" not in ok.stderr
    )  # microVM guests are nodes too


def test_flake_mode_runs_nix_eval_and_converts(tmp_path: Path) -> None:
    if shutil.which("nix") is None:
        pytest.skip("nix not installed")
    flake = tmp_path / "flake"
    flake.mkdir()
    # a flake without inputs whose nixosConfigurations output has the evaluated shape
    (flake / "flake.nix").write_text(
        "{ outputs = { self }: { nixosConfigurations.box.config.virtualisation.oci-containers.containers"
        ' = { web = { image = "nginx:1.27"; ports = [ "8080:80" ]; volumes = [ "/srv/www:/usr/share/nginx/html:ro" ]; }; }; }; }\n'
    )
    out = tmp_path / "out"
    result = run_cli(
        "convert",
        "podman-to-k8s",
        "--flake",
        f"path:{flake}#box",
        "--out",
        str(out),
        "--secrets-dir",
        str(tmp_path / "s"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all((out / "box" / "web.yaml").read_text()))
    deployment = docs[-1]
    assert deployment["metadata"]["annotations"]["hydra.io/source-host"] == "box"
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/hostname": "box"
    }
    assert "is not a k3s node" in result.stderr  # box is no inventory node


def test_disabled_servicelb_in_the_inventory_is_warned(
    tmp_path: Path, repo: Path
) -> None:
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        (repo / "hosts" / "inventory.toml")
        .read_text()
        .replace('disable = ["traefik"]', 'disable = ["traefik", "servicelb"]')
    )
    data = tmp_path / "c.json"
    data.write_text(json.dumps({"web": {"image": "x", "ports": ["3000:8080"]}}))
    result = run_cli(
        "--inventory",
        str(inventory),
        "convert",
        "podman-to-k8s",
        "--json",
        str(data),
        "--out",
        str(tmp_path / "o"),
    )
    assert result.returncode == 0, result.stderr
    assert "disables servicelb" in result.stderr


def test_emptied_source_empties_its_files_only_when_asked(tmp_path: Path) -> None:
    data = tmp_path / "c.json"
    data.write_text(json.dumps({"web": {"image": "nginx:1.27"}}))
    out = tmp_path / "out"
    assert (
        run_cli(
            "convert", "podman-to-k8s", "--json", str(data), "--out", str(out), "-q"
        ).returncode
        == 0
    )
    assert (out / "default" / "web.yaml").is_file()
    data.write_text("{}")
    drift = run_cli(
        "convert", "podman-to-k8s", "--json", str(data), "--out", str(out), "--check"
    )
    assert (
        drift.returncode == 1
        and "default/web.yaml: on disk but no longer generated" in drift.stderr
    )
    refused = run_cli(
        "convert", "podman-to-k8s", "--json", str(data), "--out", str(out), "-q"
    )
    assert refused.returncode == 2 and "pass --allow-empty" in refused.stderr
    assert (out / "default" / "web.yaml").is_file()
    emptied = run_cli(
        "convert", "podman-to-k8s", "--json", str(data), "--out", str(out), "-q",
        "--allow-empty",
    )  # fmt: skip
    assert emptied.returncode == 0, emptied.stderr
    assert list((out / "default").iterdir()) == []


def test_secret_files_are_what_secrets_import_accepts(tmp_path: Path) -> None:
    """The hand-over to `hydradeploy secrets import`: one Secret per file, namespace
    matching its folder, keys Kubernetes accepts."""
    manifests = pytest.importorskip("hydradeploy.secrets.manifests")
    assert (
        _convert_compose(tmp_path / "out", tmp_path / "secrets", "-q").returncode == 0
    )
    files = sorted((tmp_path / "secrets").rglob("*.yaml"))
    assert [f.relative_to(tmp_path / "secrets").as_posix() for f in files] == [
        "ai-system/coordinator-env.yaml",
        "ai-system/postgres-env.yaml",
        "ai-system/reasoning-env.yaml",
        "ai-system/web-env.yaml",
    ]
    for f in files:
        secret = manifests.parse_secret(f.read_bytes(), default_namespace=f.parent.name)
        assert secret.name == f.stem


def test_rocm_containers_get_the_hosts_gfx_version_checked(tmp_path: Path) -> None:
    data = tmp_path / "c.json"
    data.write_text(json.dumps({
        "good": {"image": "ollama/ollama:rocm", "devices": ["/dev/kfd", "/dev/dri"], "environment": {"HSA_OVERRIDE_GFX_VERSION": "11.0.0"}},
        "bad": {"image": "ollama/ollama:rocm", "devices": ["/dev/kfd"], "environment": {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}},
        "unset": {"image": "rocm/pytorch", "devices": ["/dev/kfd"]},
    }))  # fmt: skip
    result = run_cli(
        "convert",
        "podman-to-k8s",
        "--json",
        str(data),
        "--host",
        "hydra-amd",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.returncode == 0, result.stderr
    assert (
        "bad: HSA_OVERRIDE_GFX_VERSION is 10.3.0, host hydra-amd needs 11.0.0"
        in result.stderr
    )
    assert "unset: HSA_OVERRIDE_GFX_VERSION is not set" in result.stderr
    assert "good: HSA" not in result.stderr


def test_unknown_compose_top_level_keys_are_reported(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yml"
    compose.write_text(
        "include: [other.yml]\nx-anchors: {}\nservices:\n  a: {image: x}\n"
    )
    result = run_cli(
        "convert",
        "compose-to-k8s",
        str(compose),
        "--out",
        str(tmp_path / "o"),
        "--report",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 0, result.stderr
    lost = json.loads((tmp_path / "r.json").read_text())["notes"]["lost"]
    assert [n["key"] for n in lost] == ["include"]
