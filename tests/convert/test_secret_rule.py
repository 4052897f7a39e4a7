"""Issue 14 point 5: one secret rule (hydradeploy.secret_names) for the converter,
k8s-check's no-secrets check and `secrets check`'s scan; and plaintext Secrets never
land silently in the working directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from convert_helpers import podman, run_cli
from hydradeploy.inventory import load_inventory
from hydradeploy.manifests import CHECKS, Tree, load_documents
from hydradeploy.secrets.scan import scan_text
from hydradeploy.versions import KUBERNETES_VERSION

REPO = Path(__file__).resolve().parents[2]

# (name, value, secret?): pi-hole's WEBPASSWORD was a literal in the converter's output
CASES = [
    ("WEBPASSWORD", "Tr0ub4dor-and-3-more", True),
    ("FTLCONF_webserver_api_password", "Tr0ub4dor-and-3-more", True),
    ("OPENAI_API_KEY", "sk-A1b2C3d4E5f6G7h8", True),
    ("clientSecret", "Zm9vYmFyYmF6cXV4MTIzNDU2", True),
    ("DB_PASSWORD_FILE", "/run/secrets/db_password1", False),
    ("TOKEN_TTL", "3600s-and-more-000", False),
    ("TZ", "Europe/Berlin-Zone-1a", False),
]


@pytest.mark.parametrize(("name", "value", "secret"), CASES)
def test_converter_k8s_check_and_secrets_scan_agree(
    tmp_path: Path, name: str, value: str, secret: bool
) -> None:
    # the converter: a secret moves into a Secret, never a literal under k8s/
    conv = podman(
        {"app": {"image": "pihole/pihole:2025", "environment": {name: value}}}
    )
    pod = next(d for d in conv.files["apps/app.yaml"] if d["kind"] == "Deployment")
    (env,) = pod["spec"]["template"]["spec"]["containers"][0]["env"]
    assert ("valueFrom" in env) == secret
    # k8s-check's no-secrets check on the same variable as a literal
    manifest = {**pod}
    manifest["spec"] = json.loads(json.dumps(pod["spec"]))
    manifest["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": name, "value": value}
    ]
    (tmp_path / "k8s").mkdir()
    text = yaml.safe_dump(manifest)
    (tmp_path / "k8s" / "app.yaml").write_text(text)
    tree = Tree(
        load_documents(tmp_path / "k8s"),
        load_inventory(REPO / "hosts" / "inventory.toml"),
        KUBERNETES_VERSION,
    )
    assert bool(CHECKS["no-secrets"](tree)) == secret
    # `secrets check`'s scan of the same file
    found = [f for f in scan_text(text, "k8s/app.yaml") if f.kind == "secret-value"]
    assert bool(found) == secret


def test_secrets_never_default_to_the_working_directory(tmp_path: Path) -> None:
    data = tmp_path / "c.json"
    data.write_text(
        json.dumps(
            {"web": {"image": "nginx:1", "environment": {"API_TOKEN": "t0ps3cret"}}}
        )
    )
    env = {"HYDRA_ROOT": ""}
    # outside a repository, without --out: refused, nothing written
    refused = run_cli(
        "convert", "podman-to-k8s", "--json", str(data), cwd=tmp_path, env=env
    )
    assert refused.returncode == 2 and "pass --out DIR" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]
    # with --out: the Secret goes beside it, not into the working directory
    out = tmp_path / "elsewhere" / "k8s"
    done = run_cli(
        "convert", "podman-to-k8s", "--json", str(data), "--out", str(out), "-q",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        tmp_path / "elsewhere" / "k8s-secrets" / "default" / "web-env.yaml"
    ).is_file()
    assert not (tmp_path / "secrets").exists()


def test_inside_the_repository_but_out_elsewhere_keeps_secrets_beside_out(
    tmp_path: Path,
) -> None:
    data = tmp_path / "c.json"
    data.write_text(
        json.dumps(
            {"web": {"image": "nginx:1", "environment": {"API_TOKEN": "t0ps3cret"}}}
        )
    )
    out = tmp_path / "out"
    done = run_cli(
        "convert",
        "podman-to-k8s",
        "--json",
        str(data),
        "--out",
        str(out),
        "-q",
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out-secrets" / "default" / "web-env.yaml").is_file()
